"""Regenerate ``fixtures/points/beijing_sample.csv`` (not a test; deterministic).

    .venv/bin/python tests/geo/make_beijing_sample.py

5,000 points with a fixed seed: 3,000 uniform over the bounding box of the Beijing
venues (most fall outside every station) and 2,000 uniform inside randomly chosen
station polygons, shuffled; each with an ``id`` and a GPS-like ``accuracy_m``.
Coordinates are rounded to 6 decimals (~0.1 m). Derived from OpenStreetMap data:
© OpenStreetMap contributors, ODbL 1.0 (see fixtures/venues/SOURCES.md).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import shapely
from shapely.geometry import shape

ROOT = Path(__file__).resolve().parents[2]
VENUES = ROOT / "fixtures" / "venues" / "beijing_venues.geojson"
OUT = ROOT / "fixtures" / "points" / "beijing_sample.csv"
SEED = 20261128
N_UNIFORM = 3_000
N_INSIDE = 2_000


def main() -> None:
    rng = np.random.default_rng(SEED)
    features = json.loads(VENUES.read_text(encoding="utf-8"))["features"]
    geoms = np.array([shape(f["geometry"]) for f in features], dtype=object)
    minx, miny, maxx, maxy = shapely.total_bounds(geoms)
    lat = [rng.uniform(miny, maxy, N_UNIFORM)]
    lng = [rng.uniform(minx, maxx, N_UNIFORM)]
    picked = rng.integers(0, len(geoms), N_INSIDE)
    bounds = shapely.bounds(geoms[picked])
    inside_lat = np.empty(N_INSIDE)
    inside_lng = np.empty(N_INSIDE)
    todo = np.arange(N_INSIDE)
    while todo.size:  # rejection sampling in each polygon's bounding box
        x = rng.uniform(bounds[todo, 0], bounds[todo, 2])
        y = rng.uniform(bounds[todo, 1], bounds[todo, 3])
        ok = shapely.intersects_xy(geoms[picked[todo]], x, y)
        inside_lng[todo[ok]], inside_lat[todo[ok]] = x[ok], y[ok]
        todo = todo[~ok]
    lat.append(inside_lat)
    lng.append(inside_lng)
    all_lat, all_lng = np.concatenate(lat), np.concatenate(lng)
    order = rng.permutation(all_lat.size)
    accuracy = np.round(rng.gamma(2.0, 8.0, all_lat.size), 1)
    lines = ["id,lat,lng,accuracy_m"]
    for k, i in enumerate(order):
        lines.append(f"p{k:05d},{all_lat[i]:.6f},{all_lng[i]:.6f},{accuracy[k]}")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
