// "Try it" on a model page: calls the hub's own inference API (anonymous, public models only).
(function () {
  const form = document.getElementById("try");
  if (!form) return;
  const out = document.getElementById("try-output");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const task = form.dataset.task;
    const inputs = form.elements.inputs.value;
    let body = { inputs };
    if (task === "text-generation") {
      body = { inputs, parameters: { max_new_tokens: 40 } };
    } else if (task === "sentence-similarity") {
      // First line: the sentence; the next lines: the sentences to compare with it (HF's shape).
      const lines = inputs.split("\n").map((line) => line.trim()).filter(Boolean);
      body = { inputs: { source_sentence: lines[0] || "", sentences: lines.slice(1) } };
    }
    out.textContent = "…";
    // The first request for a model loads it: say so when the answer is slow to come.
    const slow = setTimeout(() => { out.textContent = "… loading the model (the first answer can take a minute)"; }, 3000);
    try {
      const response = await fetch(`/models/${form.dataset.model}`, {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
        credentials: "omit",
      });
      const data = await response.json();
      out.textContent = JSON.stringify(data, null, 2);
    } catch (err) {
      out.textContent = String(err);
    } finally {
      clearTimeout(slow);
    }
  });
})();
