/* Venues upload: dry-run report first (each problem listed and highlighted on the
   map), then import. Both calls are POST /console/api/venues/import. */
"use strict";
(function () {
  const g = window.geopush;
  const form = document.getElementById("upload");
  const importButton = document.getElementById("import");
  const status = document.getElementById("status");
  const w = g.words();
  const m = g.map("map");
  let layer = null;

  function formData() {
    const data = new FormData();
    data.append("file", document.getElementById("file").files[0]);
    return data;
  }

  function readLocal(file) {
    return new Promise(function (resolve) {
      if (!/\.(geo)?json$/i.test(file.name)) { resolve(null); return; }
      const reader = new FileReader();
      reader.onload = function () { try { resolve(JSON.parse(reader.result)); } catch (e) { resolve(null); } };
      reader.readAsText(file);
    });
  }

  function show(report, geojson) {
    document.getElementById("report").hidden = false;
    const s = report.summary;
    const dl = document.getElementById("summary");
    dl.textContent = "";
    [["features", s.features], ["valid", s.valid], ["rejected", s.rejected],
     ["errors", s.errors], ["warnings", s.warnings]].forEach(function (pair) {
      const dt = document.createElement("dt"); dt.textContent = w[pair[0]];
      const dd = document.createElement("dd"); dd.textContent = pair[1];
      dd.dataset.count = pair[0];
      dl.append(dt, dd);
    });
    const body = document.querySelector("#problems tbody");
    body.textContent = "";
    const bad = new Set();
    report.problems.forEach(function (p) {
      const row = document.createElement("tr");
      row.className = p.severity;
      g.cell(row, p.severity);
      g.cell(row, p.feature_id || (p.feature_index >= 0 ? "#" + p.feature_index : "file"));
      g.cell(row, p.field);
      g.cell(row, p.message);
      body.appendChild(row);
      if (p.feature_index >= 0) bad.add(p.feature_index);
    });
    document.getElementById("no-problems").hidden = report.problems.length > 0;
    if (layer) { m.removeLayer(layer); layer = null; }
    if (geojson && geojson.features) {
      const features = geojson.features.map(function (f, i) {
        return Object.assign({}, f, { properties: Object.assign({}, f.properties, { __index: i }) });
      }).filter(function (f) { return f.geometry; });
      try {
        layer = L.geoJSON({ type: "FeatureCollection", features }, {
          style: function (f) {
            const broken = bad.has(f.properties.__index);
            return { color: broken ? "#c0392b" : "#1f6feb", weight: broken ? 4 : 2,
                     fillOpacity: broken ? 0.35 : 0.15, className: broken ? "problem" : "ok" };
          },
          pointToLayer: function (f, latlng) {
            const r = (f.properties && f.properties.radius_m) || 30;
            return L.circle(latlng, { radius: r });
          },
        }).addTo(m);
        const bounds = layer.getBounds();
        if (bounds.isValid()) m.fitBounds(bounds, { padding: [20, 20] });
      } catch (e) { layer = null; }
    }
  }

  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    const file = document.getElementById("file").files[0];
    if (!file) return;
    status.textContent = "…";
    const result = await g.api("POST", "/venues/import?dry_run=true", formData(), true);
    if (!result.ok) { status.textContent = g.errorText(result.body); importButton.disabled = true; return; }
    status.textContent = "";
    show(result.body, await readLocal(file));
    importButton.disabled = result.body.venues.length === 0;
  });

  importButton.addEventListener("click", async function () {
    const result = await g.api("POST", "/venues/import", formData(), true);
    status.textContent = result.ok ? w.imported.replace("{n}", result.body.imported)
                                   : g.errorText(result.body);
    importButton.disabled = true;
  });
})();
