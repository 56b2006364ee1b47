// The inbox's small glue: keyboard, composer keys, saved replies, scroll, catch-up after a
// reconnect and relative times. The socket itself is htmx's ws extension (see inbox.html).
(function () {
  "use strict";

  function inbox() { return document.getElementById("inbox"); }
  function threadPane() { return document.getElementById("thread-pane"); }
  function openId() {
    var pane = threadPane();
    return pane && pane.dataset.conversationId ? pane.dataset.conversationId : "";
  }

  // Which row is open, and whether the phone layout shows the thread or the list.
  function markOpen() {
    var root = inbox();
    if (!root) return;
    var id = openId();
    root.dataset.openConversation = id;
    root.classList.toggle("has-thread", !!id);
    document.querySelectorAll(".conv-row.is-open").forEach(function (row) {
      row.classList.remove("is-open");
      row.removeAttribute("aria-current");
    });
    var row = id && document.getElementById("conversation-" + id);
    if (row) {
      row.classList.add("is-open");
      row.setAttribute("aria-current", "true");
      // The open thread is being read: a live unread badge on it is stale at once.
      row.classList.remove("unread");
    }
  }

  function scrollThread(force) {
    var box = document.getElementById("thread-scroll");
    if (!box) return;
    var nearBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 160;
    if (force || nearBottom) box.scrollTop = box.scrollHeight;
  }

  function rows() { return Array.prototype.slice.call(document.querySelectorAll(".conv-row")); }

  function moveSelection(step) {
    var list = rows();
    if (!list.length) return;
    var index = list.findIndex(function (r) { return r.classList.contains("is-open"); });
    var next = list[Math.min(list.length - 1, Math.max(0, index + step))];
    if (index === -1) next = list[0];
    var link = next && next.querySelector("a.conv-link");
    if (link) {
      link.click();
      next.scrollIntoView({ block: "nearest" });
    }
  }

  function isField(el) {
    return el && (el.tagName === "INPUT" || el.tagName === "TEXTAREA" || el.tagName === "SELECT" || el.isContentEditable);
  }

  document.addEventListener("keydown", function (event) {
    if (!inbox()) return;
    var target = event.target;
    if (target && target.id === "composer-text") {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        target.form.requestSubmit();
      } else if (event.key === "Escape") {
        target.blur();
      }
      return;
    }
    if (isField(target)) {
      if (event.key === "Escape") target.blur();
      return;
    }
    if (event.metaKey || event.ctrlKey || event.altKey) return;
    if (event.key === "/") {
      event.preventDefault();
      var search = document.getElementById("inbox-search");
      if (search) search.focus();
    } else if (event.key === "j" || event.key === "ArrowDown") {
      event.preventDefault();
      moveSelection(1);
    } else if (event.key === "k" || event.key === "ArrowUp") {
      event.preventDefault();
      moveSelection(-1);
    }
  });

  // A saved reply fills the composer (text and price); the chatter still presses Send.
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest(".saved-reply");
    if (!button) return;
    var composer = document.getElementById("composer");
    if (!composer) return;
    composer.elements.text.value = button.dataset.text || "";
    var cents = parseInt(button.dataset.priceCents || "0", 10);
    composer.elements.price.value = cents ? (cents / 100).toFixed(2) : "";
    // Its media (a <template> of chips beside the button) replace the composer's chips.
    var media = button.dataset.replyMedia && document.getElementById(button.dataset.replyMedia);
    var chips = composer.querySelector("[data-media-chips]");
    if (chips) {
      chips.textContent = "";
      if (media) chips.appendChild(media.content.cloneNode(true));
    }
    var details = button.closest("details");
    if (details) details.open = false;
    composer.elements.text.focus();
  });

  document.addEventListener("htmx:afterSwap", function (event) {
    var target = event.detail.target;
    if (target && target.id === "thread-pane") {
      markOpen();
      scrollThread(true);
    } else if (target && target.id === "composer") {
      var text = document.getElementById("composer-text");
      if (text && !text.getAttribute("aria-invalid")) text.focus();
      scrollThread(true);
    }
  });

  // A Retry's answer shows the message as it was when the retry was taken (queued). If live
  // events have moved it on meanwhile (sending, sent), that answer is stale: keep the bubble.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var form = event.detail.requestConfig && event.detail.requestConfig.elt;
    var target = event.detail.target;
    if (!form || !form.matches || !form.matches("form[data-retry]") || !target) return;
    var status = target.querySelector(".msg-status");
    if (status && !status.classList.contains("st-failed")) event.detail.shouldSwap = false;
  });

  document.addEventListener("htmx:afterSettle", markOpen);
  // A fan's message that lands in the thread the chatter has open is read by them.
  var readTimer = null;
  function markReadSoon() {
    var pane = threadPane();
    if (!pane || !pane.dataset.readUrl || document.hidden) return;
    clearTimeout(readTimer);
    readTimer = setTimeout(function () {
      htmx.ajax("POST", pane.dataset.readUrl, { swap: "none" });
    }, 300);
  }

  // Live fragments name #live-sink beside their real target (see inbox.html): on a page that
  // does not show that thread or row, the sink is the only match and the swap is dropped here,
  // so htmx has no missing target to report. A bubble or row the page has already (the
  // sender's own POST answer, a conversation moving to the top) is taken out before it is
  // added again: it shows once.
  document.addEventListener("htmx:oobBeforeSwap", function (event) {
    var detail = event.detail;
    if (detail.target.id === "live-sink") {
      detail.shouldSwap = false;
      return;
    }
    if (!detail.target.matches("#conversation-list, .thread-messages")) return;
    Array.prototype.forEach.call(detail.fragment.children, function (element) {
      var old = element.id && document.getElementById(element.id);
      if (old && old !== detail.target && detail.target.contains(old)) old.remove();
    });
  });

  document.addEventListener("htmx:oobAfterSwap", function (event) {
    markOpen();
    scrollThread(false);
    var target = event.detail.target;
    var id = openId();
    if (id && target && target.id === "thread-messages-" + id && target.querySelector(".bubble.in:last-child")) {
      markReadSoon();
    }
  });
  window.addEventListener("popstate", function () { setTimeout(markOpen, 0); });

  // Live connection state, and catch-up: every (re)connect, the first one included (events
  // between the page's render and the socket's open), reloads what the page shows, so a
  // dropped socket leaves no gap (events are not replayed, the fragments are re-read).
  document.addEventListener("htmx:wsOpen", function () {
    var root = inbox();
    if (!root) return;
    root.dataset.live = "connected";
    var url = window.location.pathname + window.location.search;
    htmx.ajax("GET", url, { target: "#conversation-list", swap: "outerHTML" });
    var id = openId();
    if (id) {
      htmx.ajax("GET", url, { target: "#thread-messages-" + id, swap: "innerHTML" }).then(function () {
        scrollThread(true);
      });
    }
  });
  document.addEventListener("htmx:wsClose", function () {
    var root = inbox();
    if (root) root.dataset.live = "reconnecting";
  });

  // Relative times ("5m", "2h") stay true while the page stays open.
  function shortSince(date) {
    var seconds = Math.max(0, Math.floor((Date.now() - date.getTime()) / 1000));
    var units = [["w", 604800], ["d", 86400], ["h", 3600], ["m", 60]];
    for (var i = 0; i < units.length; i++) {
      if (seconds >= units[i][1]) return Math.floor(seconds / units[i][1]) + units[i][0];
    }
    return "now";
  }
  setInterval(function () {
    document.querySelectorAll("time[data-since]").forEach(function (el) {
      var date = new Date(el.getAttribute("datetime"));
      if (!isNaN(date)) el.textContent = shortSince(date);
    });
  }, 30000);

  document.addEventListener("DOMContentLoaded", function () {
    markOpen();
    scrollThread(true);
  });
})();
