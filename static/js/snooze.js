// The thread's snooze menu (crm.snooze) is a <details>: Enter or Space on "Snooze" opens it,
// Tab moves through the choices, and Escape closes it and gives the focus back.
(function () {
  "use strict";
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    var menu = event.target.closest && event.target.closest(".snooze-menu[open]");
    if (!menu) return;
    menu.open = false;
    menu.querySelector("summary").focus();
    event.stopPropagation();
  }, true);
})();
