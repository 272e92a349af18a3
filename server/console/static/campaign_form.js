/* The campaign form: the common fields of a campaign, two-way with the raw editor.
   fill(doc) sets the controls from a campaign document; apply(doc) returns the document
   with the controls' values written in, every field the form does not show kept;
   showError(field, message) puts the API's message beside the control whose data-path
   is the error's field path (or its nearest parent). campaign.js owns the rest. */
"use strict";
(function () {
  const root = document.getElementById("fields");
  if (!root) return;
  const list = document.getElementById("variant-list");
  const template = document.getElementById("variant-template");
  const trigger = document.getElementById("f-trigger");
  const words = window.geopush.words();
  const VARIANT_FIELDS = ["id", "weight", "title", "body", "image_url"];
  let onChange = function () {};

  function get(doc, path) {
    return path.split(".").reduce(function (o, k) { return o && typeof o === "object" ? o[k] : undefined; }, doc);
  }

  /* Set doc's value at a dotted path; undefined removes it, and a parent object left
     empty by that goes too (the API's default applies). */
  function put(doc, path, value) {
    const keys = path.split(".");
    const parents = [doc];
    let o = doc;
    for (let i = 0; i < keys.length - 1; i++) {
      if (!o[keys[i]] || typeof o[keys[i]] !== "object") {
        if (value === undefined) return;
        o[keys[i]] = {};
      }
      o = o[keys[i]];
      parents.push(o);
    }
    if (value === undefined) delete o[keys[keys.length - 1]];
    else o[keys[keys.length - 1]] = value;
    for (let i = keys.length - 1; i > 0; i--) {
      if (Object.keys(parents[i]).length) break;
      delete parents[i - 1][keys[i - 1]];
    }
  }

  function splitList(text) {
    return text.split(",").map(function (s) { return s.trim(); }).filter(Boolean);
  }

  function numberOr(text) {
    if (text.trim() === "") return undefined;
    const n = Number(text);
    return Number.isFinite(n) ? n : text;  // the API names the field when it is no number
  }

  function readControl(el) {
    const text = el.value;
    if (el.dataset.kind === "list") return text.trim() ? splitList(text) : undefined;
    if (el.dataset.kind === "number" || el.type === "number") return numberOr(text);
    return text === "" ? undefined : text;
  }

  function showControl(el, value) {
    if (value === undefined || value === null) el.value = "";
    else if (Array.isArray(value)) el.value = value.join(", ");
    else el.value = String(value);
  }

  function triggerKind(t) {
    if (!t || typeof t !== "object") return "enter";
    if (t.scheduled) return "scheduled";
    if (t.behaviour) return "behaviour";
    return t.event || "enter";
  }

  function showTriggerFields() {
    root.querySelectorAll("[data-when]").forEach(function (div) {
      div.hidden = div.dataset.when !== trigger.value;
    });
  }

  /* The trigger the form describes, starting from the document's own (its other
     fields kept while the kind stays the same). */
  function applyTrigger(doc) {
    const kind = trigger.value;
    const before = doc.trigger && typeof doc.trigger === "object" ? doc.trigger : {};
    const same = triggerKind(before) === kind;
    let t;
    if (kind === "scheduled") {
      t = { scheduled: Object.assign({}, same ? before.scheduled : {}) };
      t.scheduled.times = splitList(document.getElementById("f-times").value);
    } else if (kind === "behaviour") {
      t = { behaviour: Object.assign({}, same ? before.behaviour : {}) };
      t.behaviour.kind = document.getElementById("f-behaviour").value.trim();
      const delay = numberOr(document.getElementById("f-delay").value);
      if (delay === undefined) delete t.behaviour.delay_s; else t.behaviour.delay_s = delay;
    } else {
      t = Object.assign({}, before.event ? before : {}, { event: kind });
      delete t.scheduled; delete t.behaviour;
      const dwell = kind === "dwell" ? numberOr(document.getElementById("f-dwell").value) : undefined;
      if (dwell === undefined) delete t.dwell_s; else t.dwell_s = dwell;
    }
    doc.trigger = t;
  }

  function variantBlocks() {
    return Array.prototype.slice.call(list.querySelectorAll("fieldset.variant"));
  }

  function addVariantBlock(variant, index) {
    const block = template.content.firstElementChild.cloneNode(true);
    block.querySelector("legend").textContent = words.variant + " " + (index + 1);
    block.dataset.path = "variants[" + index + "]";
    VARIANT_FIELDS.forEach(function (name) {
      const input = block.querySelector("[data-field=" + name + "]");
      input.id = "f-variant-" + index + "-" + name;
      input.dataset.path = "variants[" + index + "]." + name;
      block.querySelector("[data-for=" + name + "]").htmlFor = input.id;
      showControl(input, variant[name]);
    });
    block.querySelector(".remove-variant").dataset.index = String(index);
    list.append(block);
  }

  function fillVariants(variants) {
    list.textContent = "";
    (Array.isArray(variants) ? variants : []).forEach(function (v, i) {
      addVariantBlock(v && typeof v === "object" ? v : {}, i);
    });
  }

  function applyVariants(doc) {
    const before = Array.isArray(doc.variants) ? doc.variants : [];
    doc.variants = variantBlocks().map(function (block, i) {
      const v = Object.assign({}, before[i] && typeof before[i] === "object" ? before[i] : {});
      VARIANT_FIELDS.forEach(function (name) {
        const input = block.querySelector("[data-field=" + name + "]");
        const value = name === "weight" ? numberOr(input.value) : (input.value === "" && name === "image_url" ? undefined : input.value);
        if (value === undefined) delete v[name]; else v[name] = value;
      });
      return v;
    });
  }

  function simpleControls() {
    return root.querySelectorAll("input[data-path]:not([data-field]):not([id^=f-times]):not([id^=f-behaviour]):not([id^=f-delay]):not([id^=f-dwell])");
  }

  /* The document with the form's values written in; the fields the form does not
     show are kept as they were. */
  function apply(doc) {
    const out = JSON.parse(JSON.stringify(doc && typeof doc === "object" && !Array.isArray(doc) ? doc : {}));
    simpleControls().forEach(function (el) { put(out, el.dataset.path, readControl(el)); });
    applyTrigger(out);
    out.channels = Array.prototype.filter.call(
      root.querySelectorAll("#f-channels input"), function (c) { return c.checked; })
      .map(function (c) { return c.value; });
    if (!out.channels.length) delete out.channels;
    applyVariants(out);
    return out;
  }

  function fill(doc) {
    if (!doc || typeof doc !== "object" || Array.isArray(doc)) return;
    simpleControls().forEach(function (el) { showControl(el, get(doc, el.dataset.path)); });
    const t = doc.trigger || {};
    trigger.value = triggerKind(t);
    showControl(document.getElementById("f-dwell"), t.dwell_s);
    showControl(document.getElementById("f-times"), t.scheduled && t.scheduled.times);
    showControl(document.getElementById("f-behaviour"), t.behaviour && t.behaviour.kind);
    showControl(document.getElementById("f-delay"), t.behaviour && t.behaviour.delay_s);
    showTriggerFields();
    const channels = Array.isArray(doc.channels) ? doc.channels : ["inbox"];
    root.querySelectorAll("#f-channels input").forEach(function (c) {
      c.checked = channels.indexOf(c.value) >= 0;
    });
    if (!variantBlocks().length || variantBlocks().length !== (doc.variants || []).length
        || !list.contains(document.activeElement)) {
      fillVariants(doc.variants);
    } else {
      variantBlocks().forEach(function (block, i) {
        VARIANT_FIELDS.forEach(function (name) {
          const input = block.querySelector("[data-field=" + name + "]");
          if (input !== document.activeElement) showControl(input, doc.variants[i][name]);
        });
      });
    }
  }

  function clearErrors() {
    root.querySelectorAll(".field-error").forEach(function (e) { e.remove(); });
    root.querySelectorAll("[aria-invalid]").forEach(function (e) {
      e.removeAttribute("aria-invalid");
      e.removeAttribute("aria-errormessage");
    });
  }

  /* The control for an error's field path: itself, else its nearest parent path
     ("trigger.behaviour.kind" → "trigger"). Null when the form does not show it. */
  function controlFor(field) {
    let path = field;
    while (path) {
      const el = root.querySelector('[data-path="' + CSS.escape(path) + '"]');
      if (el) return el;
      const cut = Math.max(path.lastIndexOf("."), path.lastIndexOf("["));
      path = cut > 0 ? path.slice(0, cut) : "";
    }
    return null;
  }

  function showError(field, message) {
    clearErrors();
    if (!field) return false;
    const el = controlFor(field);
    if (!el) return false;
    const note = document.createElement("span");
    note.className = "field-error error";
    note.id = "err-" + (el.id || "field");
    note.textContent = field + ": " + message;
    el.setAttribute("aria-invalid", "true");
    el.setAttribute("aria-errormessage", note.id);
    el.after(note);
    return true;
  }

  root.addEventListener("input", function () { onChange(); });
  root.addEventListener("change", function (event) {
    if (event.target === trigger) showTriggerFields();
    onChange();
  });
  document.getElementById("add-variant").addEventListener("click", function () {
    const n = variantBlocks().length;
    addVariantBlock({ id: String.fromCharCode(97 + (n % 26)), weight: 1, title: "", body: "" }, n);
    onChange();
    list.querySelector("#f-variant-" + n + "-title").focus();
  });
  list.addEventListener("click", function (event) {
    const button = event.target.closest(".remove-variant");
    if (!button) return;
    const index = Number(button.dataset.index);
    const doc = apply(window.geopush.campaignDocument());
    doc.variants.splice(index, 1);
    fillVariants(doc.variants);
    onChange(doc);
    document.getElementById("add-variant").focus();
  });

  window.geopush.campaignForm = {
    fill: fill, apply: apply, showError: showError, clearErrors: clearErrors,
    onChange: function (fn) { onChange = fn; },
  };
})();
