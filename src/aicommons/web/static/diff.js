// A pull request's diff is fetched when its "Files changed" section is first opened (the page
// itself never carries it: a large PR would make every view of the discussion heavy). Its lines are
// marked the way the commit page marks them on the server (web/browse.py diff_lines): file headers,
// hunks, added and removed lines; built as text nodes, so nothing in a diff is ever markup.
(function () {
  const box = document.getElementById("pr-diff");
  if (!box) return;
  const out = document.getElementById("pr-diff-text");
  let loaded = false;

  function kind(line) {
    if (line.startsWith("diff --git") || line.startsWith("# ")) return "file";
    if (line.startsWith("+++") || line.startsWith("---") || line.startsWith("index ")) return "meta";
    if (line.startsWith("@@")) return "hunk";
    if (line.startsWith("+")) return "add";
    if (line.startsWith("-")) return "del";
    return "ctx";
  }

  function show(text) {
    const lines = text.replace(/\n$/, "").split("\n");
    out.replaceChildren(...lines.map((line) => {
      const span = document.createElement("span");
      span.className = `d-${kind(line)}`;
      span.textContent = line;
      return span;
    }));
  }

  box.addEventListener("toggle", async () => {
    if (!box.open || loaded) return;
    loaded = true;
    out.textContent = "Loading…";
    try {
      const response = await fetch(box.dataset.src, { credentials: "same-origin" });
      if (response.ok) show(await response.text());
      else out.textContent = `Could not load the diff (${response.status})`;
    } catch (err) {
      loaded = false;
      out.textContent = String(err);
    }
  });
})();
