/* Campaign editor: the form (campaign_form.js) and the raw text, JSON when it starts
   with "{" and YAML otherwise, are one campaign. Either is checked as you type by
   POST /console/api/campaigns/check (the API's own validation; YAML read on the server;
   field paths in the answer, shown beside the form's control too), the variants
   previewed for sample people, then the checked document saved, activated or paused
   through the API. */
"use strict";
(function () {
  const g = window.geopush;
  const w = g.words();
  const form = document.getElementById("editor");
  const raw = document.getElementById("raw");
  const check = document.getElementById("check");
  const status = document.getElementById("status");
  let timer = null;
  let latest = 0;

  function previews(list) {
    const body = document.querySelector("#previews tbody");
    body.textContent = "";
    list.forEach(function (p) {
      const row = document.createElement("tr");
      g.cell(row, p.variant_id);
      g.cell(row, p.user_id + (p.locale ? " · " + p.locale : "") + (p.age ? " · " + p.age : "") + " · " + p.local_time);
      g.cell(row, p.failure ? p.failure : p.title, p.failure ? "error" : "");
      g.cell(row, p.body + (p.rich ? " · " + Object.keys(p.rich).join(", ") : ""));
      body.appendChild(row);
    });
  }

  /* Per variant, one block per channel: where it goes, the sample address it is
     addressed to (marked as a sample), and the body as that channel sends it. */
  function payloads(list) {
    const box = document.getElementById("payloads");
    box.textContent = "";
    list.forEach(function (p) {
      const h = document.createElement("h3");
      h.textContent = p.variant_id + " → " + p.channels.join(", ") + " · " + p.user_id;
      box.append(h);
      p.requests.forEach(function (r) {
        const section = document.createElement("section");
        section.className = "channel-payload";
        section.dataset.channel = r.channel;
        const title = document.createElement("h4");
        title.textContent = r.channel.toUpperCase() + " — " + r.where;
        section.append(title);
        if (r.sample_address) {
          const note = document.createElement("p");
          note.className = "sample";
          note.textContent = w.sample_address + ": " + r.sample_address;
          section.append(note);
        }
        const pre = document.createElement("pre");
        pre.className = "payload";
        pre.setAttribute("aria-label", p.variant_id + " " + r.channel);
        pre.textContent = JSON.stringify(r.body, null, 2);
        section.append(pre);
        box.append(section);
      });
    });
  }

  const form_ = g.campaignForm;
  const YAML = "application/yaml";
  let lastDocument = null;

  function isJson(text) { return text.trimStart().startsWith("{"); }

  /* The campaign the raw text holds as far as this page can tell: the JSON parsed
     here, else the document the server last read (YAML, or JSON being typed). */
  function campaignDocument() {
    if (isJson(raw.value)) { try { return JSON.parse(raw.value); } catch (e) { /* below */ } }
    return lastDocument || {};
  }
  g.campaignDocument = campaignDocument;

  function invalid(text, field) {
    check.textContent = text; check.className = "error";
    raw.setAttribute("aria-invalid", "true");
    if (form_) form_.showError(field, text.slice(field ? field.length + 2 : 0));
    return null;
  }

  /* Check the raw text; fromForm: the form wrote it, so the form is not refilled. */
  async function validate(fromForm) {
    const mine = ++latest;
    const text = raw.value;
    let result;
    if (isJson(text)) {
      let doc;
      try { doc = JSON.parse(text); } catch (e) { return invalid("JSON: " + e.message, null); }
      if (form_ && !fromForm) form_.fill(doc);
      result = await g.api("POST", "/campaigns/check", doc);
    } else {
      result = await g.api("POST", "/campaigns/check", text, YAML);
    }
    if (mine !== latest) return null;
    if (!result.ok) {
      const e = result.body && result.body.error;
      return invalid(g.errorText(result.body), e ? e.field : null);
    }
    lastDocument = result.body.document;
    if (form_) { form_.clearErrors(); if (!fromForm) form_.fill(lastDocument); }
    check.textContent = w.valid; check.className = "ok";
    raw.removeAttribute("aria-invalid");
    previews(result.body.previews);
    payloads(result.body.payloads);
    return lastDocument;
  }

  function later(fromForm) {
    clearTimeout(timer);
    timer = setTimeout(function () { validate(fromForm); }, 300);
  }

  raw.addEventListener("input", function () { later(false); });

  /* A form edit rewrites the raw text as JSON (which YAML reads too), keeping the
     fields the form does not show. */
  if (form_) form_.onChange(function (doc) {
    raw.value = JSON.stringify(doc || form_.apply(campaignDocument()), null, 2);
    later(true);
  });

  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    const doc = await validate(true);
    if (!doc) return;
    const id = form.dataset.campaign || doc.id;
    const result = id ? await g.api("PUT", "/campaigns/" + encodeURIComponent(id), doc)
                      : await g.api("POST", "/campaigns", doc);
    if (!result.ok) { status.textContent = g.errorText(result.body); return; }
    if (!form.dataset.campaign) {
      window.location.assign("/console/campaigns/" + encodeURIComponent(result.body.id));
      return;
    }
    status.textContent = w.saved;
  });

  ["activate", "pause"].forEach(function (action) {
    const button = document.getElementById(action);
    if (!button) return;
    button.addEventListener("click", async function () {
      const id = button.dataset.campaign;
      const result = await g.api("POST", "/campaigns/" + encodeURIComponent(id) + "/" + action);
      if (result.ok) {
        document.getElementById("campaign-status").textContent = result.body.status;
        document.getElementById("activate").disabled = result.body.status === "active";
        document.getElementById("pause").disabled = result.body.status !== "active";
        document.getElementById(action === "activate" ? "pause" : "activate").focus();
      }
      else status.textContent = g.errorText(result.body);
    });
  });

  function pairs(obj) {
    const keys = Object.keys(obj || {});
    return keys.length ? keys.map(function (k) {
      const v = obj[k];
      return k + " " + (typeof v === "object" ? pairs(v) : v);
    }).join(", ") : "–";
  }

  document.getElementById("backtest").addEventListener("submit", async function (event) {
    event.preventDefault();
    const out = document.getElementById("backtest-status");
    const dl = document.getElementById("backtest-report");
    let doc = raw.value;
    if (isJson(raw.value)) {
      try { doc = JSON.parse(raw.value); } catch (e) { out.textContent = "JSON: " + e.message; return; }
    }
    out.textContent = "…";
    const days = document.getElementById("days").value || "7";
    const path = "/campaigns/backtest?days=" + encodeURIComponent(days);
    const result = typeof doc === "string" ? await g.api("POST", path, doc, YAML)
                                           : await g.api("POST", path, doc);
    if (!result.ok) { out.textContent = g.errorText(result.body); dl.hidden = true; return; }
    const r = result.body.backtest;
    if (!r) { out.textContent = w.no_pings; dl.hidden = true; return; }
    out.textContent = "";
    dl.textContent = "";
    [["pings", result.body.pings + " (" + result.body.users + ")"],
     ["pushes", r.pushes], ["users", r.users_reached], ["variants", pairs(r.pushes_by_variant)],
     ["held_out", r.held_out_control], ["suppressed", pairs(r.suppressions_by_reason)],
     ["displaced", r.displaced.total + " — " + w.by_priority + ": " + pairs(r.displaced.by_priority)
                   + "; " + w.by_caps + ": " + pairs(r.displaced.by_caps)]].forEach(function (pair) {
      const dt = document.createElement("dt"); dt.textContent = w[pair[0]];
      const dd = document.createElement("dd"); dd.textContent = pair[1]; dd.dataset.key = pair[0];
      dl.append(dt, dd);
    });
    dl.hidden = false;
  });

  validate(false);
})();
