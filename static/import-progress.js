// Live progress of an import written in the background: poll its counts, reload when it ends.
(function () {
  const box = document.getElementById("import-progress");
  if (!box) return;
  async function poll() {
    try {
      const response = await fetch(box.dataset.url, { headers: { Accept: "application/json" } });
      if (response.ok) {
        const data = await response.json();
        for (const cell of box.querySelectorAll("[data-field]")) {
          cell.textContent = data[cell.dataset.field];
        }
        const bar = box.querySelector(".bar");
        bar.style.width = data.percent + "%";
        bar.parentElement.setAttribute("aria-valuenow", data.percent);
        if (!data.active) return window.location.reload();
      }
    } catch (e) {
      // The portal may be restarting; keep trying.
    }
    setTimeout(poll, 1000);
  }
  setTimeout(poll, 1000);
})();
