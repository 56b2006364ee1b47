// Composer drafts (crm.drafts): what the member types is saved on the server at most every
// 2 s while they type, and at once when the page is left, so it comes back after a reload, in
// another tab or on another device. Sending removes it on the server; an emptied composer
// saves an empty draft, which removes it too. The list's "Draft" marker is the member's own:
// live rows carry no user, so it is put back here on rows a live event re-renders.
(function () {
  "use strict";

  var SAVE_EVERY_MS = 2000;
  var timer = null;
  var lastSaved = null; // "text\u0000price" of the composer last saved, per composer

  function composer() { return document.getElementById("composer"); }
  function list() { return document.getElementById("conversation-list"); }

  function state(form) {
    return form.elements.text.value + "\u0000" + (form.elements.price ? form.elements.price.value : "");
  }

  function draftIds() {
    var el = list();
    var raw = el ? (el.dataset.draftIds || "") : "";
    return raw.split(" ").filter(Boolean);
  }

  function setDraftMark(conversationId, present) {
    var el = list();
    if (el) {
      var ids = draftIds().filter(function (id) { return id !== conversationId; });
      if (present) ids.push(conversationId);
      el.dataset.draftIds = ids.join(" ");
    }
    markRows();
  }

  function markRows() {
    var ids = draftIds();
    document.querySelectorAll(".conv-row").forEach(function (row) {
      var meta = row.querySelector(".conv-meta");
      if (!meta) return;
      var marker = meta.querySelector(".draft-marker");
      var has = ids.indexOf(row.dataset.conversationId) !== -1;
      if (has && !marker) {
        marker = document.createElement("span");
        marker.className = "draft-marker";
        marker.title = "You have an unsent draft";
        marker.textContent = "Draft";
        meta.appendChild(marker);
      } else if (!has && marker) {
        marker.remove();
      }
    });
  }

  function save(form, keepalive) {
    clearTimeout(timer);
    timer = null;
    var now = state(form);
    if (now === lastSaved) return;
    lastSaved = now;
    var body = new FormData();
    body.append("csrfmiddlewaretoken", form.elements.csrfmiddlewaretoken.value);
    body.append("text", form.elements.text.value);
    if (form.elements.price) body.append("price", form.elements.price.value);
    // The server refuses a save from a composer older than the member's last send.
    body.append("since", form.dataset.draftSince || "");
    var id = form.dataset.conversationId;
    setDraftMark(id, !!(form.elements.text.value.trim() || (form.elements.price && parseFloat(form.elements.price.value))));
    fetch(form.dataset.draftUrl, {
      method: "POST", body: body, credentials: "same-origin", keepalive: !!keepalive,
      headers: { "X-Requested-With": "fetch" },
    }).then(function (response) {
      if (response.status === 409) setDraftMark(id, false); // sent meanwhile: no draft
    }).catch(function () { lastSaved = null; }); // saved again on the next change
  }

  function scheduleSave(form) {
    if (timer === null) timer = setTimeout(function () { save(form, false); }, SAVE_EVERY_MS);
  }

  document.addEventListener("input", function (event) {
    var form = composer();
    if (!form || !form.dataset.draftUrl || !form.contains(event.target)) return;
    if (event.target.name !== "text" && event.target.name !== "price") return;
    scheduleSave(form);
  });

  // A saved reply picked into the composer (inbox.js fills it) becomes the draft now.
  document.addEventListener("click", function (event) {
    if (!(event.target.closest && event.target.closest(".saved-reply"))) return;
    setTimeout(function () {
      var form = composer();
      if (form && form.dataset.draftUrl) save(form, false);
    }, 0);
  });

  // Sending: the server drops the draft when the send commits; nothing pending may bring
  // it back afterwards.
  document.addEventListener("htmx:beforeRequest", function (event) {
    var form = composer();
    if (form && event.detail.elt === form) {
      clearTimeout(timer);
      timer = null;
      lastSaved = state(form);
    }
  });

  function flush() {
    var form = composer();
    if (form && form.dataset.draftUrl && timer !== null) save(form, true);
  }
  window.addEventListener("pagehide", flush);
  document.addEventListener("visibilitychange", function () {
    if (document.hidden) flush();
  });
  // Another thread opens (the composer is swapped out): save what was typed first.
  document.addEventListener("htmx:beforeSwap", function (event) {
    if (event.detail.target && event.detail.target.id === "thread-pane") flush();
  });

  function composerLoaded() {
    var form = composer();
    lastSaved = form ? state(form) : null;
    markRows();
  }
  document.addEventListener("htmx:afterSettle", function (event) {
    var target = event.detail.target;
    if (target && (target.id === "thread-pane" || target.id === "composer")) {
      composerLoaded();
      var form = composer();
      // A sent message leaves an empty composer behind: no draft any more.
      if (target.id === "composer" && form && !form.elements.text.value) {
        setDraftMark(form.dataset.conversationId, false);
      }
    } else {
      markRows();
    }
  });
  document.addEventListener("htmx:oobAfterSwap", markRows);
  document.addEventListener("DOMContentLoaded", composerLoaded);
})();
