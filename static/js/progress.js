// Polls the generation's status and moves the bar; reloads the page when it is done.
(function () {
  const root = document.getElementById("generation");
  if (!root) return;
  const bar = root.querySelector(".bar");
  const stage = document.getElementById("stage");
  const progress = root.querySelector(".progress");
  const elapsed = document.getElementById("elapsed");
  const started = Date.now();
  function show(percent) {
    bar.style.width = percent + "%";  // a CSSOM write, which the CSP allows (no inline style)
    progress.setAttribute("aria-valuenow", percent);
  }
  show(progress.dataset.percent);
  let delay = 1000;
  async function tick() {
    try {
      const response = await fetch(root.dataset.statusUrl, { headers: { Accept: "application/json" } });
      if (response.ok) {
        const data = await response.json();
        if (data.terminal) { window.location.reload(); return; }
        show(data.percent);
        stage.textContent = data.label + (data.queue_position != null ? " · position " + data.queue_position : "");
        elapsed.textContent = "Watching for " + Math.round((Date.now() - started) / 1000) + " s. This page updates by itself.";
        delay = 1000;
      }
    } catch (e) {
      delay = Math.min(delay * 2, 10000);  // the server is restarting or the network dropped
    }
    setTimeout(tick, delay);
  }
  setTimeout(tick, delay);
})();
