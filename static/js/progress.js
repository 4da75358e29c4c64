// Polls the generation's status and moves the bar; reloads the page when it is done.
(function () {
  const root = document.getElementById("generation");
  if (!root) return;
  const bar = root.querySelector(".bar");
  const stage = document.getElementById("stage");
  const progress = root.querySelector(".progress");
  let delay = 1000;
  async function tick() {
    try {
      const response = await fetch(root.dataset.statusUrl, { headers: { Accept: "application/json" } });
      if (response.ok) {
        const data = await response.json();
        if (data.terminal) { window.location.reload(); return; }
        bar.style.width = data.percent + "%";
        progress.setAttribute("aria-valuenow", data.percent);
        stage.textContent = data.label + (data.queue_position != null ? " · position " + data.queue_position : "");
        delay = 1000;
      }
    } catch (e) {
      delay = Math.min(delay * 2, 10000);  // the server is restarting or the network dropped
    }
    setTimeout(tick, delay);
  }
  setTimeout(tick, delay);
})();
