/* Campaign editor: the raw JSON checked as you type by POST /console/api/campaigns/check
   (the API's own validation, field paths in the answer), the variants previewed for
   sample people, then saved, activated or paused through the API. */
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

  function payloads(list) {
    const box = document.getElementById("payloads");
    box.textContent = "";
    list.forEach(function (p) {
      const h = document.createElement("h3");
      h.textContent = p.variant_id + " → " + p.channels.join(", ");
      const pre = document.createElement("pre");
      pre.className = "payload";
      pre.textContent = JSON.stringify(p.payload, null, 2);
      box.append(h, pre);
    });
  }

  async function validate() {
    const mine = ++latest;
    let doc;
    try { doc = JSON.parse(raw.value); }
    catch (e) { check.textContent = "JSON: " + e.message; check.className = "error"; raw.setAttribute("aria-invalid", "true"); return null; }
    const result = await g.api("POST", "/campaigns/check", doc);
    if (mine !== latest) return null;
    if (result.ok) {
      check.textContent = w.valid; check.className = "ok";
      raw.removeAttribute("aria-invalid");
      previews(result.body.previews);
      payloads(result.body.payloads);
      return doc;
    }
    check.textContent = g.errorText(result.body); check.className = "error";
    raw.setAttribute("aria-invalid", "true");
    return null;
  }

  raw.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(validate, 300);
  });

  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    const doc = await validate();
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
    let doc;
    try { doc = JSON.parse(raw.value); } catch (e) { out.textContent = "JSON: " + e.message; return; }
    out.textContent = "…";
    const days = document.getElementById("days").value || "7";
    const result = await g.api("POST", "/campaigns/backtest?days=" + encodeURIComponent(days), doc);
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

  validate();
})();
