// Live progress of work in the background (a payment run, an import): poll its JSON while it is
// active, fill in each [data-count] and [data-note] (hidden when empty), the bar and the state
// badge, and reload once when it ends.
(function () {
  const box = document.querySelector("[data-progress-url]");
  if (!box || box.dataset.active !== "true") return;
  async function poll() {
    try {
      const response = await fetch(box.dataset.progressUrl, { headers: { Accept: "application/json" } });
      if (!response.ok) return setTimeout(poll, 5000);
      const data = await response.json();
      for (const cell of box.querySelectorAll("[data-count]")) {
        cell.textContent = data[cell.dataset.count];
      }
      for (const note of box.querySelectorAll("[data-note]")) {
        note.textContent = data[note.dataset.note] || "";
        note.hidden = !note.textContent;
      }
      const state = document.getElementById(box.dataset.stateBadge || "");
      if (state && state.textContent.trim() !== data.state) {
        const badge = document.createElement("span");
        badge.className = "status status-" + data.state.toLowerCase().replaceAll(" ", "-");
        badge.textContent = data.state;
        state.replaceChildren(badge);
      }
      const bar = box.querySelector(".bar");
      bar.style.width = data.percent + "%";
      bar.parentElement.setAttribute("aria-valuenow", data.percent);
      if (!data.active) return window.location.reload();
    } catch (e) {
      // The portal may be restarting; keep trying.
    }
    setTimeout(poll, 1000);
  }
  setTimeout(poll, 1000);
})();
