"""Baseline for ``bench_locate``: the points-in-venues join as a plain shapely script.

    python tests/bench/locate_strtree.py VENUES.geojson POINTS.csv OUT.csv

What a competent engineer writes without geopush: the venues with json + shapely, the
points with pandas' C parser, ``STRtree.query(points, predicate="intersects")`` (a
point on an edge is inside, as in geopush), rows sorted by point then venue (file
order), written with pandas. Same input and output as ``geopush locate``.
"""

import json
import sys

import numpy as np
import pandas as pd
import shapely

venues_path, points_path, out_path = sys.argv[1:4]
with open(venues_path, encoding="utf-8") as fh:
    features = json.load(fh)["features"]
venue_ids = np.array([f["properties"]["id"] for f in features], dtype=object)
tree = shapely.STRtree(shapely.from_geojson([json.dumps(f["geometry"]) for f in features]))

dtypes: dict[str, type[str] | str] = {"id": str, "lat": "float64", "lng": "float64"}
points = pd.read_csv(points_path, dtype=dtypes)
point, venue = tree.query(shapely.points(points["lng"].to_numpy(), points["lat"].to_numpy()),
                          predicate="intersects")
order = np.lexsort((venue, point))
pd.DataFrame({"point_id": points["id"].to_numpy()[point[order]],
              "venue_id": venue_ids[venue[order]]}).to_csv(out_path, index=False)
