// The composer's media picker (templates/crm/inbox/media_picker.html, issue 18).
//   <button data-media-picker-open="dialog-id">  opens the vault dialog; its body is loaded
//                                                 fresh each time (the fan's marks change)
//   [data-picker-grid] role=listbox               arrows / Home / End move, Enter or Space
//                                                 picks, Escape closes (the dialog's own)
//   [data-media-chips]                            the chosen items in the composer: hidden
//                                                 vault_item_ids, a "free preview" box each
// Before the composer is sent, the price and media rules are checked here too (the server
// checks them again): a price is 3 to 200 dollars and needs media; previews need a price and
// leave at least one item locked.
(function () {
  "use strict";

  function composerFor(dialog) {
    return document.getElementById(dialog.getAttribute("data-composer") || "composer");
  }

  function chipsOf(form) {
    return form ? form.querySelector("[data-media-chips]") : null;
  }

  function chosenIds(form) {
    var chips = chipsOf(form);
    if (!chips) return [];
    return Array.prototype.map.call(chips.querySelectorAll(".media-chip"), function (chip) {
      return chip.getAttribute("data-item-id");
    });
  }

  function options(grid) {
    return Array.prototype.slice.call(grid.querySelectorAll('[role="option"]'));
  }

  function syncSelected(dialog) {
    var ids = chosenIds(composerFor(dialog));
    dialog.querySelectorAll('[role="option"]').forEach(function (option) {
      var chosen = ids.indexOf(option.getAttribute("data-item-id")) !== -1;
      option.setAttribute("aria-selected", chosen ? "true" : "false");
    });
  }

  function focusOption(grid, option) {
    options(grid).forEach(function (other) { other.tabIndex = other === option ? 0 : -1; });
    if (option) option.focus();
  }

  function ensureTabStop(grid) {
    var list = options(grid);
    if (list.length && !list.some(function (o) { return o.tabIndex === 0; })) list[0].tabIndex = 0;
  }

  function announce(dialog, text) {
    var help = dialog.querySelector(".picker-help");
    if (help) help.textContent = text;
  }

  function addChip(form, option) {
    var template = document.getElementById("media-chip-template");
    var chips = chipsOf(form);
    if (!template || !chips) return;
    var chip = template.content.firstElementChild.cloneNode(true);
    var id = option.getAttribute("data-item-id");
    var name = option.getAttribute("data-name");
    chip.setAttribute("data-item-id", id);
    chip.querySelector('input[name="vault_item_ids"]').value = id;
    chip.querySelector('input[name="preview_item_ids"]').value = id;
    chip.querySelector(".media-chip-name").textContent = name;
    chip.querySelector("[data-media-chip-remove]").setAttribute("aria-label", "Remove " + name);
    var thumb = option.getAttribute("data-thumb");
    if (thumb) {
      var img = document.createElement("img");
      img.src = thumb;
      img.alt = "";
      img.width = 40;
      img.height = 40;
      chip.querySelector(".media-chip-thumb").appendChild(img);
    }
    var mark = option.getAttribute("data-mark-state");
    if (mark && mark !== "never") {
      var badge = document.createElement("span");
      badge.className = "media-chip-mark small";
      badge.textContent = option.getAttribute("data-mark");
      chip.appendChild(badge);
    }
    chips.appendChild(chip);
  }

  // Forms that react to changes (the campaign builder's pre-flight) see the chips change.
  // Errors about the last picks are checked again when the picks change: the page's own
  // (a price without media) at once, the server's (an item gone, not ready) on the next Save.
  function changed(form) {
    form.querySelectorAll("[data-media-server-error]").forEach(function (error) {
      error.hidden = true;
    });
    var box = form.querySelector("[data-media-error]");
    if (box && !box.hidden) {
      box.textContent = mediaError(form);
      box.hidden = !box.textContent;
    }
    form.dispatchEvent(new Event("change", { bubbles: true }));
  }

  function toggle(dialog, option) {
    if (!option) return;
    var name = option.getAttribute("data-name");
    if (option.getAttribute("aria-disabled") === "true") {
      announce(dialog, name + " cannot be sent: " + option.getAttribute("data-unavailable") + ".");
      return;
    }
    var form = composerFor(dialog);
    var chips = chipsOf(form);
    if (!chips) return;
    var id = option.getAttribute("data-item-id");
    var existing = chips.querySelector('.media-chip[data-item-id="' + id + '"]');
    if (existing) {
      existing.remove();
      announce(dialog, name + " removed.");
    } else {
      addChip(form, option);
      var mark = option.getAttribute("data-mark-state") ? " (" + option.getAttribute("data-mark") + ")" : "";
      announce(dialog, name + " added" + mark + ".");
    }
    changed(form);
    syncSelected(dialog);
  }

  function load(dialog) {
    var slot = dialog.querySelector("[data-picker-slot]");
    if (!slot || !window.htmx) return;
    window.htmx.ajax("GET", dialog.getAttribute("data-picker-url"), {
      target: slot, swap: "innerHTML"
    }).then(function () {
      syncSelected(dialog);
      var grid = dialog.querySelector("[data-picker-grid]");
      if (grid) { ensureTabStop(grid); }
      var search = dialog.querySelector('input[name="q"]');
      if (search) search.focus();
    });
  }

  document.addEventListener("click", function (event) {
    var target = event.target instanceof Element ? event.target : null;
    if (!target) return;
    var opener = target.closest("[data-media-picker-open]");
    if (opener) {
      var dialog = document.getElementById(opener.getAttribute("data-media-picker-open"));
      if (dialog && typeof dialog.showModal === "function") {
        dialog.showModal();
        load(dialog);
      }
      return;
    }
    var closer = target.closest("[data-media-picker-close]");
    if (closer) {
      closer.closest("dialog").close();
      return;
    }
    var remove = target.closest("[data-media-chip-remove]");
    if (remove) {
      var removedFrom = remove.closest("form");
      remove.closest(".media-chip").remove();
      if (removedFrom) changed(removedFrom);
      return;
    }
    var option = target.closest('[role="option"]');
    var pickerDialog = option ? option.closest(".media-picker-dialog") : null;
    if (option && pickerDialog) {
      focusOption(option.closest("[data-picker-grid]"), option);
      toggle(pickerDialog, option);
    }
  });

  // Captured, and kept from the inbox's own keys (j/k/arrows move between conversations):
  // inside the picker they belong to the picker. Escape still closes the dialog (its default).
  document.addEventListener("keydown", function (event) {
    var inside = event.target instanceof Element ? event.target.closest(".media-picker-dialog") : null;
    if (!inside) return;
    event.stopPropagation();
    var option = event.target.closest('[role="option"]');
    var dialog = inside;
    if (!option) return;
    var grid = option.closest("[data-picker-grid]");
    var list = options(grid);
    var index = list.indexOf(option);
    // Columns: how many options share the first one's row.
    var columns = list.filter(function (o) { return o.offsetTop === list[0].offsetTop; }).length || 1;
    var next = null;
    switch (event.key) {
      case "ArrowRight": next = list[index + 1]; break;
      case "ArrowLeft": next = list[index - 1]; break;
      case "ArrowDown": next = list[index + columns] || list[list.length - 1]; break;
      case "ArrowUp": next = list[index - columns] || list[0]; break;
      case "Home": next = list[0]; break;
      case "End": next = list[list.length - 1]; break;
      case "Enter":
      case " ":
        event.preventDefault();
        toggle(dialog, option);
        return;
      default: return;
    }
    event.preventDefault();
    if (next) focusOption(grid, next);
  }, true);

  document.addEventListener("htmx:afterSwap", function (event) {
    var dialog = event.target instanceof Element ? event.target.closest(".media-picker-dialog") : null;
    if (!dialog) return;
    syncSelected(dialog);
    var grid = dialog.querySelector("[data-picker-grid]");
    if (grid) ensureTabStop(grid);
  });

  function mediaError(form) {
    var price = parseFloat((form.querySelector('input[name="price"]') || {}).value || "0") || 0;
    var chips = form.querySelectorAll(".media-chip");
    var previews = form.querySelectorAll('.media-chip input[name="preview_item_ids"]:checked');
    if (price && (price < 3 || price > 200)) return "A price is between $3 and $200.";
    if (price && !chips.length) return "A paid message needs media: add media or clear the price.";
    if (previews.length && !price) return "Free previews are for a paid message: set a price.";
    if (previews.length && previews.length >= chips.length) {
      return "At least one media must stay locked behind the price.";
    }
    return "";
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.querySelector("[data-media-chips]")) return;
    var note = form.querySelector('input[name="note"]');
    if (note && note.checked) return;
    var box = form.querySelector("[data-media-error]");
    var error = mediaError(form);
    if (box) {
      box.textContent = error;
      box.hidden = !error;
    }
    if (error) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);
})();
