/* One venue: its outline on the map, and moving it into a parent venue (PUT of the
   same feature with a new parent_id). */
"use strict";
(function () {
  const g = window.geopush;
  const el = document.getElementById("map");
  const id = el.dataset.venue;
  const m = g.map(el);
  const path = "/venues/" + encodeURIComponent(id);
  let feature = null;

  g.api("GET", path).then(function (result) {
    if (!result.ok) return;
    feature = result.body;
    const layer = L.geoJSON(feature, {
      pointToLayer: function (f, latlng) { return L.circle(latlng, { radius: f.properties.radius_m || 30 }); },
    }).addTo(m);
    const b = layer.getBounds();
    if (b.isValid()) m.fitBounds(b, { padding: [20, 20] });
  });

  document.getElementById("move").addEventListener("submit", async function (event) {
    event.preventDefault();
    const status = document.getElementById("status");
    if (!feature) return;
    const parent = document.getElementById("parent").value.trim();
    const props = Object.assign({}, feature.properties);
    if (parent) props.parent_id = parent; else delete props.parent_id;
    const body = Object.assign({}, feature, { properties: props });
    delete body.warnings;
    const result = await g.api("PUT", path, body);
    status.textContent = result.ok ? g.words().saved : g.errorText(result.body);
    if (result.ok) feature = result.body;
  });
})();
