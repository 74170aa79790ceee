// A "Copy" button beside text a user pastes elsewhere (a suggested codes.yaml entry): it copies
// the text of the element its data-copy names, and says so. Without script the text stays
// selectable as before.
(function () {
  for (const button of document.querySelectorAll("button[data-copy]")) {
    const source = document.getElementById(button.dataset.copy);
    if (!source || !navigator.clipboard) continue;
    button.hidden = false;
    button.addEventListener("click", async function () {
      const said = button.nextElementSibling;
      try {
        await navigator.clipboard.writeText(source.textContent);
        said.textContent = "Copied.";
      } catch (error) {
        said.textContent = "Copying was refused by the browser: select the text instead.";
      }
    });
  }
})();
