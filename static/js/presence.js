// Presence over the inbox socket (crm/team_presence.py): a heartbeat every 10 s naming the
// open thread, a typing notice at most every 2 s, and the collision guard's hidden input kept
// at the newest message on screen while nothing is being written. The strips themselves are
// server-rendered fragments.
(function () {
  "use strict";

  var HEARTBEAT_MS = 10000;
  var TYPING_EVERY_MS = 2000;
  var TYPING_IDLE_MS = 3000;  // no keystroke for this long: stopped typing
  var socket = null;
  var lastTyping = 0;
  var typingThread = null;
  var stopTimer = null;

  function root() { return document.getElementById("inbox"); }
  function me() { var r = root(); return r ? r.dataset.userId : ""; }
  function openId() {
    var pane = document.getElementById("thread-pane");
    return pane && pane.dataset.conversationId ? parseInt(pane.dataset.conversationId, 10) : null;
  }

  function send(message) {
    if (socket) socket.send(JSON.stringify(message));
  }
  // "active": the person used the page since the last heartbeat (keys, pointer, scroll,
  // touch). Only such heartbeats count as their activity for the idle clock-out
  // (crm/worktime.py): an open tab nobody looks at still idles out.
  var usedSinceBeat = true;
  ["keydown", "pointerdown", "pointermove", "wheel", "touchstart", "scroll"].forEach(function (name) {
    document.addEventListener(name, function () { usedSinceBeat = true; }, { passive: true, capture: true });
  });
  function heartbeat() {
    if (!root()) return;
    send({ presence: "heartbeat", conversation_id: openId(), active: usedSinceBeat && !document.hidden });
    usedSinceBeat = false;
  }

  // The same strip goes to every member: each page hides its own avatar and typing line, and
  // shows the parts meant only for the claim's holder.
  function showForMe(scope) {
    var id = me();
    (scope || document).querySelectorAll("[data-presence-user]").forEach(function (el) {
      el.hidden = el.dataset.presenceUser === id;
    });
    (scope || document).querySelectorAll("[data-presence-only]").forEach(function (el) {
      el.hidden = el.dataset.presenceOnly !== id;
    });
  }

  // The collision guard: the newest message this page shows is what the author has seen,
  // but only while the composer is empty. Once they are writing, what lands meanwhile is
  // what the guard is for (Help Scout's "a reply was added while you were typing"): the id
  // stays where it was when they started, and the send stops to show it.
  function newestShown() {
    var id = openId();
    var box = id && document.getElementById("thread-messages-" + id);
    if (!box) return null;
    var newest = 0;
    box.querySelectorAll(".bubble[data-message-id]").forEach(function (el) {
      newest = Math.max(newest, parseInt(el.dataset.messageId, 10) || 0);
    });
    return newest;
  }
  function syncSeen() {
    var composer = document.getElementById("composer");
    var newest = newestShown();
    if (!composer || newest === null || !composer.elements.after_message_id) return;
    if (composer.elements.text && composer.elements.text.value.trim()) return;
    var field = composer.elements.after_message_id;
    if ((parseInt(field.value, 10) || 0) < newest) field.value = newest;
  }

  document.addEventListener("htmx:wsOpen", function (event) {
    socket = event.detail.socketWrapper;
    heartbeat();
  });
  document.addEventListener("htmx:wsClose", function () { socket = null; });
  setInterval(heartbeat, HEARTBEAT_MS);

  // Typing: a notice on the first keystroke and every 2 s while it goes on (the others hear
  // the first; later ones keep it alive), and "stopped" after 3 s without one. A send ends
  // it on the server.
  function typingStop() {
    clearTimeout(stopTimer);
    if (typingThread) send({ presence: "typing_stop", conversation_id: typingThread });
    typingThread = null;
    lastTyping = 0;
  }
  document.addEventListener("input", function (event) {
    if (!event.target || event.target.id !== "composer-text" || !openId()) return;
    var now = Date.now();
    clearTimeout(stopTimer);
    stopTimer = setTimeout(typingStop, TYPING_IDLE_MS);
    if (now - lastTyping < TYPING_EVERY_MS && typingThread === openId()) return;
    lastTyping = now;
    typingThread = openId();
    send({ presence: "typing", conversation_id: typingThread });
  });
  document.addEventListener("htmx:beforeRequest", function (event) {
    var elt = event.detail.elt;
    if (elt && elt.id === "composer") {
      clearTimeout(stopTimer);
      typingThread = null;
      lastTyping = 0;
    }
  });

  // "Edit" after a stopped send: the notice goes, the text stays.
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-composer-edit]");
    if (!button) return;
    var stopped = button.closest(".composer-stopped");
    if (stopped) stopped.remove();
    var text = document.getElementById("composer-text");
    if (text) text.focus();
  });

  document.addEventListener("htmx:afterSwap", function (event) {
    var target = event.detail.target;
    if (target && target.id === "thread-pane") heartbeat();  // another thread: join it
    showForMe();
    syncSeen();
  });
  document.addEventListener("htmx:oobAfterSwap", function () {
    showForMe();
    syncSeen();
  });
  window.addEventListener("popstate", function () { setTimeout(heartbeat, 0); });
  window.addEventListener("pagehide", function () { send({ presence: "leave" }); });
  document.addEventListener("DOMContentLoaded", function () { showForMe(); syncSeen(); });
})();
