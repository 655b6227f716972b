// A pull request's diff is fetched when its "Files changed" section is first opened (the page
// itself never carries it: a large PR would make every view of the discussion heavy).
(function () {
  const box = document.getElementById("pr-diff");
  if (!box) return;
  const out = document.getElementById("pr-diff-text");
  let loaded = false;
  box.addEventListener("toggle", async () => {
    if (!box.open || loaded) return;
    loaded = true;
    out.textContent = "Loading…";
    try {
      const response = await fetch(box.dataset.src, { credentials: "same-origin" });
      out.textContent = response.ok ? await response.text() : `Could not load the diff (${response.status})`;
    } catch (err) {
      loaded = false;
      out.textContent = String(err);
    }
  });
})();
