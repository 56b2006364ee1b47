// Behaviour every page shares, kept out of the HTML so the Content-Security-Policy needs no
// inline-script exception (script-src 'self'):
//   <select data-autosubmit>        submits its form when it changes (the account switcher)
//   <form data-confirm="Question?"> asks before submitting (destructive actions)
(function () {
  "use strict";
  document.addEventListener("change", function (event) {
    var field = event.target;
    if (field instanceof HTMLElement && field.hasAttribute("data-autosubmit") && field.form) {
      field.form.requestSubmit();
    }
  });
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement)) return;
    var question = form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);
})();
