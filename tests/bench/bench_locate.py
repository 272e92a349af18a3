"""Benchmark: ``geopush locate`` against plain shapely and geopandas scripts (issue 13).

The bar: the whole ``geopush locate`` process, 2,000,000 CSV points against the shipped
Beijing venues, takes at most 0.8x the time of the faster of two plain scripts doing
the same CSV -> CSV job, each a whole process too, measured in the same run:
``tests/bench/locate_strtree.py`` (json + shapely ``STRtree``) and
``tests/bench/locate_sjoin.py`` (``geopandas.sjoin``). All three must write the same
rows.

    python -m tests.bench.bench_locate [--quick] [--points N] [--reps R] [--seed S]

The points CSV (``id,lat,lng``, 7 decimals) is seeded: 90 % uniform over the venues'
bounding box (~67 x 65 km: most points hit nothing, as a city's GPS points against its
subway stations), 10 % scattered (Gaussian, sigma 60 m) about the venues' vertices, so
that thousands of rows are written and compared. Each repetition runs the three
processes one after another (interleaved, so a noisy moment hits them alike); the best
wall time of each counts. Child CPU time is shown to make a multi-threaded run visible.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.bench._common import BEIJING_VENUES, ROOT, force_single_thread_env, format_table

force_single_thread_env()

BAR = 0.8
"""``geopush locate`` / the faster baseline, at most (issue 13)."""

_NEAR_SHARE = 0.10
_NEAR_SIGMA_M = 60.0
_M_PER_DEG = 111_320.0


def write_points(path: Path, n: int, seed: int) -> None:
    """The seeded points CSV described in the module docstring."""
    import numpy as np  # noqa: PLC0415 - after force_single_thread_env
    import pandas as pd  # noqa: PLC0415
    import shapely  # noqa: PLC0415

    features = json.loads(BEIJING_VENUES.read_text(encoding="utf-8"))["features"]
    shapes = shapely.from_geojson([json.dumps(f["geometry"]) for f in features])
    west, south, east, north = shapely.total_bounds(shapes)
    vertices = shapely.get_coordinates(shapes)
    rng = np.random.default_rng(seed)
    lat = rng.uniform(south, north, n)
    lng = rng.uniform(west, east, n)
    near = rng.random(n) < _NEAR_SHARE
    pick = vertices[rng.integers(0, len(vertices), int(near.sum()))]
    lat[near] = pick[:, 1] + rng.normal(0, _NEAR_SIGMA_M, len(pick)) / _M_PER_DEG
    lng[near] = pick[:, 0] + rng.normal(0, _NEAR_SIGMA_M, len(pick)) / (
        _M_PER_DEG * np.cos(np.radians(pick[:, 1])))
    frame = pd.DataFrame({"id": np.char.add("p", np.arange(n).astype(str)),
                          "lat": lat, "lng": lng})
    frame.to_csv(path, index=False, float_format="%.7f")


def _commands(points: Path, out_dir: Path) -> dict[str, tuple[list[str], Path]]:
    python = sys.executable
    geopush = Path(python).with_name("geopush")
    venues = str(BEIJING_VENUES)
    here = Path(__file__).resolve().parent
    out = {name: out_dir / f"{name}.csv" for name in ("geopush", "strtree", "sjoin")}
    return {
        "geopush": ([str(geopush), "locate", "--venues", venues, "--points", str(points),
                     "--out", str(out["geopush"])] if geopush.exists() else
                    [python, "-m", "server.cli", "locate", "--venues", venues, "--points",
                     str(points), "--out", str(out["geopush"])], out["geopush"]),
        "strtree": ([python, str(here / "locate_strtree.py"), venues, str(points),
                     str(out["strtree"])], out["strtree"]),
        "sjoin": ([python, str(here / "locate_sjoin.py"), venues, str(points),
                   str(out["sjoin"])], out["sjoin"]),
    }


def _run(cmd: list[str]) -> tuple[float, float]:
    """(wall s, child CPU s) of one whole process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def _rows(path: Path) -> list[tuple[str, ...]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return [tuple(r) for r in csv.reader(fh)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200,000 points, 2 repetitions")
    parser.add_argument("--points", type=int, default=None, help="points (default 2,000,000)")
    parser.add_argument("--reps", type=int, default=None, help="repetitions (default 3)")
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args(argv)
    n = args.points or (200_000 if args.quick else 2_000_000)
    reps = args.reps or (2 if args.quick else 3)

    with tempfile.TemporaryDirectory(prefix="geopush-bench-locate-") as tmp:
        points = Path(tmp) / "points.csv"
        t0 = time.perf_counter()
        write_points(points, n, args.seed)
        print(f"locate: {n:,} points ({points.stat().st_size / 1e6:.0f} MB CSV, seed "
              f"{args.seed}, written in {time.perf_counter() - t0:.1f} s) x "
              f"{BEIJING_VENUES.name}; {reps} repetitions, whole processes")
        commands = _commands(points, Path(tmp))
        timings: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
        for _ in range(reps):
            for name, (cmd, _out) in commands.items():
                timings[name].append(_run(cmd))
        rows = {name: _rows(out) for name, (_cmd, out) in commands.items()}

    best = {name: min(t, key=lambda x: x[0]) for name, t in timings.items()}
    faster = min(("strtree", "sjoin"), key=lambda name: best[name][0])
    ratio = best["geopush"][0] / best[faster][0]
    same = {name: rows[name] == rows["geopush"] for name in rows}
    labels = {"geopush": "geopush locate", "strtree": "shapely STRtree script",
              "sjoin": "geopandas sjoin script"}
    print(format_table(
        ["method", "best s", "cpu s", "all s", f"x {labels[faster]}", "rows", "same rows"],
        [[labels[name], best[name][0], best[name][1],
          " ".join(f"{w:.2f}" for w, _ in timings[name]),
          best[name][0] / best[faster][0], len(rows[name]) - 1,
          "yes" if same[name] else "NO"] for name in timings]))
    with_load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    verdict = "PASS" if ratio <= BAR and all(same.values()) else "FAIL"
    print(f"{verdict}: geopush locate takes {ratio:.2f}x the faster baseline "
          f"({labels[faster]}); bar <= {BAR}x; same rows: "
          f"{'yes' if all(same.values()) else 'NO'} (load average now {with_load})")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    raise SystemExit(main())
