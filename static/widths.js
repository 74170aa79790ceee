// Bars (a run's progress, a chart's counts) carry their width as data-width, in percent: the
// Content-Security-Policy allows no inline style, so this script gives each bar its width.
(function () {
  for (const bar of document.querySelectorAll("[data-width]")) {
    bar.style.width = Math.max(0, Math.min(100, Number(bar.dataset.width) || 0)) + "%";
  }
})();
