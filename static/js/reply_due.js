// First-reply targets in the conversation list: every [data-reply-left] badge counts down
// ("4m 10s left", then "overdue 2m" with the "overdue" class) every 15 s. The server wrote the
// seconds left when it rendered the row (data-reply-left); counting from when this page first
// saw the badge keeps it true whatever this computer's clock says. Same wording as
// crm.response_targets.duration_short.
(function () {
  "use strict";
  var TICK_MS = 15000;
  var seen = new WeakMap();

  function short(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    if (seconds < 60) return seconds + "s";
    var minutes = Math.floor(seconds / 60), secs = seconds % 60;
    if (minutes < 60) return secs ? minutes + "m " + secs + "s" : minutes + "m";
    var hours = Math.floor(minutes / 60);
    minutes = minutes % 60;
    if (hours < 24) return minutes ? hours + "h " + minutes + "m" : hours + "h";
    var days = Math.floor(hours / 24);
    hours = hours % 24;
    return hours ? days + "d " + hours + "h" : days + "d";
  }

  function update(el, now) {
    var left0 = parseInt(el.getAttribute("data-reply-left"), 10);
    if (isNaN(left0)) return;
    if (!seen.has(el)) seen.set(el, now);
    var left = Math.floor(left0 - (now - seen.get(el)) / 1000);
    var overdue = left < 0;
    el.textContent = overdue ? "overdue " + short(-left) : short(left) + " left";
    el.classList.toggle("overdue", overdue);
  }

  function tick() {
    var now = performance.now();
    document.querySelectorAll("[data-reply-left]").forEach(function (el) { update(el, now); });
  }

  // Rows that arrive later (a page of the list, a live event) start counting when they land.
  document.addEventListener("htmx:load", function (event) {
    var now = performance.now();
    var root = event.target;
    if (root.matches && root.matches("[data-reply-left]")) seen.set(root, now);
    if (root.querySelectorAll) {
      root.querySelectorAll("[data-reply-left]").forEach(function (el) { seen.set(el, now); });
    }
  });
  document.addEventListener("DOMContentLoaded", function () {
    var now = performance.now();
    document.querySelectorAll("[data-reply-left]").forEach(function (el) { seen.set(el, now); });
  });
  setInterval(tick, TICK_MS);
})();
