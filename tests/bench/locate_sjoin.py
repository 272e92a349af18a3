"""Baseline for ``bench_locate``: the points-in-venues join as a plain geopandas script.

    python tests/bench/locate_sjoin.py VENUES.geojson POINTS.csv OUT.csv

``geopandas.read_file`` for the venues, pandas' C parser for the points,
``sjoin(predicate="intersects")`` (a point on an edge is inside, as in geopush), rows
sorted by point then venue (file order), written with pandas. Same input and output as
``geopush locate``.
"""

import sys

import geopandas as gpd
import pandas as pd

venues_path, points_path, out_path = sys.argv[1:4]
venues = gpd.read_file(venues_path)[["id", "geometry"]].rename(columns={"id": "venue_id"})
venues["venue_order"] = range(len(venues))
dtypes: dict[str, type[str] | str] = {"id": str, "lat": "float64", "lng": "float64"}
points = pd.read_csv(points_path, dtype=dtypes)
frame = gpd.GeoDataFrame({"point_id": points["id"]}, crs=venues.crs,
                         geometry=gpd.points_from_xy(points["lng"], points["lat"]))
joined = gpd.sjoin(frame, venues, how="inner", predicate="intersects")
joined = joined.reset_index(names="point_order").sort_values(["point_order", "venue_order"])
joined[["point_id", "venue_id"]].to_csv(out_path, index=False)
