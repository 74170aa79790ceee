// The printable review's Print button (the Content-Security-Policy allows no inline handler).
(function () {
  const button = document.querySelector("button[data-print]");
  if (button) button.addEventListener("click", function () { window.print(); });
})();
