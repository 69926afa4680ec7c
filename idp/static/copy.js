// Progressive "Copy" buttons beside the console's read-only values (a DNS record, a
// redirect URI, a token shown once): without JavaScript the value stays selectable.
(function () {
  if (!navigator.clipboard) { return; }
  document.querySelectorAll("input.ug-copy[data-copy-label]").forEach(function (input) {
    var button = document.createElement("button");
    button.type = "button";
    button.className = "secondary ug-copy-button";
    button.textContent = input.getAttribute("data-copy-label");
    button.setAttribute("aria-label", input.getAttribute("data-copy-label") + ": " +
      (input.labels && input.labels[0] ? input.labels[0].textContent.trim() : ""));
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(input.value).then(function () {
        button.textContent = input.getAttribute("data-copied-label");
      });
    });
    input.insertAdjacentElement("afterend", button);
  });
})();
