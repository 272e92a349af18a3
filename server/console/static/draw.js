/* Draw or edit a venue: click the map to add polygon corners, or click a centre and set
   the radius for a circle; drag a corner (or the centre) to move it. With ?edit=ID the
   stored venue is loaded first. Saved with PUT /console/api/venues/{id}. */
"use strict";
(function () {
  const g = window.geopush;
  const form = document.getElementById("draw");
  const status = document.getElementById("status");
  const count = document.getElementById("vertices");
  const el = document.getElementById("map");
  const center = el.dataset.center.split(",").map(Number);
  const m = g.map(el, center);
  let points = [];
  let shape = null;
  let handles = [];

  function kind() { return form.querySelector('input[name="shape"]:checked').value; }
  function radius() { return Number(document.getElementById("radius").value) || 100; }

  /* A draggable handle on each corner (or the centre): dragging moves that point. */
  function drawHandles() {
    handles.forEach(function (h) { m.removeLayer(h); });
    const shown = kind() === "circle" ? points.slice(-1) : points;
    const offset = points.length - shown.length;
    handles = shown.map(function (p, i) {
      const h = L.marker(p, { draggable: true, keyboard: false,
        icon: L.divIcon({ className: "vertex", iconSize: [12, 12] }) }).addTo(m);
      h.on("drag", function (e) { points[offset + i] = e.target.getLatLng(); redrawShape(); });
      return h;
    });
  }

  function redraw() { redrawShape(); drawHandles(); }

  function redrawShape() {
    if (shape) m.removeLayer(shape);
    shape = null;
    if (kind() === "circle" && points.length) {
      shape = L.circle(points[points.length - 1], { radius: radius(), className: "drawn" }).addTo(m);
    } else if (points.length >= 2) {
      shape = L.polygon(points, { className: "drawn" }).addTo(m);
    } else if (points.length === 1) {
      shape = L.circleMarker(points[0], { radius: 4, className: "drawn" }).addTo(m);
    }
    count.textContent = kind() === "circle" ? "" : g.words().corners.replace("{n}", points.length);
  }

  /* The venues already stored, in grey: what a new outline sits beside or inside. */
  g.api("GET", "/venues?limit=1000").then(function (result) {
    if (!result.ok) return;
    L.geoJSON(result.body, {
      style: function () { return { color: "#5b6573", weight: 1, fillOpacity: 0.08, className: "existing" }; },
      pointToLayer: function (f, latlng) { return L.circle(latlng, { radius: f.properties.radius_m || 30 }); },
      onEachFeature: function (f, layer) { layer.bindTooltip(f.properties.name || f.id); },
      interactive: false,
    }).addTo(m);
  });

  function add(latlng) {
    if (kind() === "circle") points = [latlng]; else points.push(latlng);
    redraw();
  }
  m.on("click", function (e) { add(e.latlng); });
  document.getElementById("add-centre").addEventListener("click", function () { add(m.getCenter()); });
  form.querySelectorAll('input[name="shape"]').forEach(function (r) {
    r.addEventListener("change", function () { points = []; redraw(); });
  });
  document.getElementById("radius").addEventListener("input", redraw);
  document.getElementById("clear").addEventListener("click", function () { points = []; redraw(); });

  function feature() {
    const props = { name: document.getElementById("vname").value,
                    kind: document.getElementById("vkind").value };
    const parent = document.getElementById("vparent").value.trim();
    if (parent) props.parent_id = parent;
    if (kind() === "circle") {
      const c = points[points.length - 1];
      props.radius_m = radius();
      return { type: "Feature", properties: props,
               geometry: { type: "Point", coordinates: [c.lng, c.lat] } };
    }
    const ring = points.map(function (p) { return [p.lng, p.lat]; });
    ring.push(ring[0]);
    return { type: "Feature", properties: props, geometry: { type: "Polygon", coordinates: [ring] } };
  }

  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    if ((kind() === "circle" && !points.length) || (kind() === "polygon" && points.length < 3)) {
      status.textContent = g.words().need_shape; return;
    }
    const id = document.getElementById("vid").value.trim();
    const result = await g.api("PUT", "/venues/" + encodeURIComponent(id), feature());
    if (result.ok) {
      status.textContent = g.words().saved + " ";
      const a = document.createElement("a");
      a.href = "/console/venues/" + encodeURIComponent(id);
      a.textContent = id;
      status.appendChild(a);
    } else {
      status.textContent = g.errorText(result.body);
    }
  });

  /* ?edit=ID: the stored venue's outline, fields and parent, ready to change. */
  const editing = new URLSearchParams(window.location.search).get("edit");
  if (editing) {
    g.api("GET", "/venues/" + encodeURIComponent(editing)).then(function (result) {
      if (!result.ok) { status.textContent = g.errorText(result.body); return; }
      const f = result.body;
      const p = f.properties || {};
      document.getElementById("vid").value = f.id;
      document.getElementById("vname").value = p.name || "";
      document.getElementById("vkind").value = p.kind || "other";
      document.getElementById("vparent").value = p.parent_id || "";
      if (f.geometry.type === "Point") {
        form.querySelector('input[value="circle"]').checked = true;
        document.getElementById("radius").value = p.radius_m;
        points = [L.latLng(f.geometry.coordinates[1], f.geometry.coordinates[0])];
      } else if (f.geometry.type === "Polygon") {
        points = f.geometry.coordinates[0].slice(0, -1).map(function (c) { return L.latLng(c[1], c[0]); });
      }
      redraw();
      if (points.length) m.fitBounds(L.latLngBounds(points).pad(0.5), { animate: false });
      form.dataset.loaded = "true";
    });
  }
})();
