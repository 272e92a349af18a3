/* Live: polls GET /console/api/live/{venue} every 3 s and redraws the page's tables
   (no reload). The dwell histogram is SVG built with DOM calls (CSP: no inline style). */
"use strict";
(function () {
  const g = window.geopush;
  const root = document.getElementById("live");
  const venue = root.dataset.venue;
  const SVG = "http://www.w3.org/2000/svg";
  if (!venue) return;

  function time(epoch) { return new Date(epoch * 1000).toISOString().replace("T", " ").slice(0, 19); }

  function rows(id, items, cells) {
    const body = document.querySelector("#" + id + " tbody");
    body.textContent = "";
    items.forEach(function (item) {
      const row = document.createElement("tr");
      cells(item).forEach(function (text) { g.cell(row, text); });
      body.appendChild(row);
    });
  }

  function bar(width) {
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", "0 0 100 10");
    svg.setAttribute("preserveAspectRatio", "none");
    const rect = document.createElementNS(SVG, "rect");
    rect.setAttribute("class", "bar");
    rect.setAttribute("x", "0"); rect.setAttribute("y", "2");
    rect.setAttribute("height", "6"); rect.setAttribute("width", String(width));
    svg.appendChild(rect);
    return svg;
  }

  function dwell(bins) {
    const body = document.querySelector("#dwell tbody");
    body.textContent = "";
    const top = Math.max(1, ...bins.map(function (b) { return b.count; }));
    bins.forEach(function (b) {
      const row = document.createElement("tr");
      const th = document.createElement("th"); th.scope = "row"; th.textContent = b.label;
      const td = document.createElement("td"); td.appendChild(bar(100 * b.count / top));
      row.append(th, td);
      g.cell(row, b.count);
      body.appendChild(row);
    });
  }

  async function refresh() {
    const result = await g.api("GET", "/live/" + encodeURIComponent(venue));
    if (!result.ok) { document.getElementById("updated").textContent = g.errorText(result.body); return; }
    const live = result.body;
    document.getElementById("inside-count").textContent = live.inside.length;
    document.getElementById("entries").textContent = live.entries_last_hour;
    document.getElementById("updated").textContent = time(live.now) + " UTC";
    document.getElementById("nobody").hidden = live.inside.length > 0;
    rows("inside", live.inside, function (p) { return [p.user_id, time(p.since), p.confidence]; });
    rows("latest", live.latest, function (e) { return [time(e.at), e.kind, e.user_id]; });
    dwell(live.dwell_minutes);
  }

  refresh();
  setInterval(refresh, 3000);
})();
