// "Try it" on a model page: calls the hub's own inference API (anonymous, public models only).
(function () {
  const form = document.getElementById("try");
  if (!form) return;
  const out = document.getElementById("try-output");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const task = form.dataset.task;
    const inputs = form.elements.inputs.value;
    const body = task === "text-generation" ? { inputs, parameters: { max_new_tokens: 40 } } : { inputs };
    out.textContent = "…";
    try {
      const response = await fetch(`/models/${form.dataset.model}`, {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
        credentials: "omit",
      });
      const data = await response.json();
      out.textContent = JSON.stringify(data, null, 2);
    } catch (err) {
      out.textContent = String(err);
    }
  });
})();
