/* geopush console: helpers every page script uses (no inline scripts: CSP). */
"use strict";
(function () {
  const meta = document.querySelector('meta[name="csrf-token"]');
  const csrf = meta ? meta.content : "";

  /* Call /console/api/<path> as the signed-in user; writes carry the CSRF token.
     raw: send body as it is (a string raw is its Content-Type). Resolves to
     {ok, status, body}. */
  async function api(method, path, body, raw) {
    const headers = { "X-CSRF-Token": csrf };
    let payload;
    if (raw) { payload = body; if (typeof raw === "string") headers["Content-Type"] = raw; }
    else if (body !== undefined) { headers["Content-Type"] = "application/json"; payload = JSON.stringify(body); }
    const resp = await fetch("/console/api" + path, {
      method, headers, body: payload, credentials: "same-origin" });
    let data = null;
    try { data = await resp.json(); } catch (e) { data = null; }
    return { ok: resp.ok, status: resp.status, body: data };
  }

  function words() {
    const t = document.getElementById("words");
    return t ? t.dataset : {};
  }

  /* A Leaflet map on a plain background: tiles when the setting names a server and
     it answers; outlines show either way. */
  function map(el, center) {
    const m = L.map(el, { keyboard: true }).setView(center || [39.9087, 116.3975], 15);
    const url = document.body.dataset.tileUrl;
    if (url) {
      L.tileLayer(url, { maxZoom: 19, attribution: "© OpenStreetMap contributors" }).addTo(m);
    }
    return m;
  }

  function errorText(body) {
    if (body && body.error) {
      const e = body.error;
      return (e.field ? e.field + ": " : "") + e.message;
    }
    return "request failed";
  }

  function cell(row, text, cls) {
    const td = document.createElement("td");
    td.textContent = text === null || text === undefined ? "" : String(text);
    if (cls) td.className = cls;
    row.appendChild(td);
    return td;
  }

  window.geopush = { api, words, map, errorText, cell };
})();
