"""Presence engine benchmark: full batch processing (index + hygiene + state machine).

Workload: the shipped Beijing venues (372 OSM-derived subway stations and a campus),
``--users`` devices (default 100k) each sending one ping every 10 s, ``--pings`` in all
(default 1M), processed in batches of one ping per user (the shape of a server tick).
A share of the users (``near``: 5 % and 30 %) stand around a venue — within 120 m of a
station's representative point, GPS noise 10 m, accuracy 5-30 m — so their pings reach
the state machine; the others move about a box 30 km south of the city with no venue.

Baseline, measured in the same run: the straightforward per-ping loop — a shapely
``STRtree.query(point, predicate="within")`` per ping and a dict of open visits per
user, ENTER when inside, EXIT when outside (the simplest form of the same decision). It
runs on a subsample (``--baseline-pings``) and its rate is extrapolated; per-ping cost
does not depend on the batch size, so the rate carries over.

Memory per tracked user: tracemalloc's growth while 100k users with no open visit are
added to a fresh state (numpy reports its buffers to tracemalloc).

Run standalone (``.venv/bin/python tests/bench/bench_presence.py``) or from the harness
(``main(argv)``); single-threaded libraries as in ``_common``.
"""

from __future__ import annotations

import argparse
import gc
import math
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.bench._common import force_single_thread_env

force_single_thread_env()

import numpy as np  # noqa: E402
import shapely  # noqa: E402

from geo.fence import Fence  # noqa: E402
from geo.index import GeofenceIndex  # noqa: E402
from tests.bench._common import fmt_rate, format_table, load_beijing_venues  # noqa: E402
from triggers.pings import PingBatch  # noqa: E402
from triggers.presence import process_batch  # noqa: E402
from triggers.presence_policy import PresencePolicy  # noqa: E402
from triggers.presence_state import PresenceState, new_state  # noqa: E402

T0 = 1_764_320_400.0
FAR_LAT, FAR_LNG = 39.63, 116.40  # ~30 km south of central Beijing: no venue there
M_PER_DEG = 111_320.0


def _workload(n_users: int, n_pings: int, near_share: float, geoms: list[Any],
              seed: int) -> list[PingBatch]:
    rng = np.random.default_rng(seed)
    rounds = max(1, n_pings // n_users)
    n_near = round(n_users * near_share)
    reps = shapely.get_coordinates(shapely.point_on_surface(np.asarray(geoms)))
    anchor_lat = np.empty(n_users)
    anchor_lng = np.empty(n_users)
    pick = rng.integers(0, len(reps), n_near)
    ang = rng.uniform(0, 2 * math.pi, n_near)
    dist = rng.uniform(0, 120, n_near)
    coslat = math.cos(math.radians(39.9))
    anchor_lat[:n_near] = reps[pick, 1] + dist * np.sin(ang) / M_PER_DEG
    anchor_lng[:n_near] = reps[pick, 0] + dist * np.cos(ang) / (M_PER_DEG * coslat)
    anchor_lat[n_near:] = FAR_LAT + rng.uniform(-0.1, 0.1, n_users - n_near)
    anchor_lng[n_near:] = FAR_LNG + rng.uniform(-0.15, 0.15, n_users - n_near)
    users = rng.permutation(n_users).astype(np.int64)
    batches = []
    for k in range(rounds):
        noise = rng.normal(0, 10, (2, n_users))
        drift = np.where(np.arange(n_users) < n_near, 0.0, 14.0 * k)  # far users walk
        batches.append(PingBatch.from_columns(
            users, np.full(n_users, T0 + 10.0 * k) + rng.uniform(0, 1, n_users),
            anchor_lat + (noise[0] + drift) / M_PER_DEG,
            anchor_lng + noise[1] / (M_PER_DEG * coslat),
            accuracy_m=rng.uniform(5, 30, n_users),
        ))
    return batches


def _engine(index: GeofenceIndex, batches: list[PingBatch]) -> tuple[float, int, int]:
    policy = PresencePolicy()
    state = new_state()
    n_events = 0
    gc.collect()
    c0 = time.process_time()
    for b in batches:
        state, events = process_batch(state, index, b, policy, float(b.ts.max()))
        n_events += len(events)
    cpu = time.process_time() - c0
    open_visits = sum(len(v) for v in state.visits.values())
    return cpu, n_events, open_visits


def _baseline(ids: list[str], geoms: list[Any], batches: list[PingBatch],
              n_sample: int) -> tuple[float, int]:
    """Per-ping STRtree + dict state on the first ``n_sample`` users' pings."""
    tree = shapely.STRtree(geoms)
    per_user = max(1, n_sample // len(batches))
    visits: dict[int, dict[int, float]] = {}
    last_ts: dict[int, float] = {}
    n = 0
    c0 = time.process_time()
    for b in batches:
        for i in range(min(per_user, len(b))):
            user, ts = int(b.user_id[i]), float(b.ts[i])
            lat, lng = float(b.lat[i]), float(b.lng[i])
            if ts <= last_ts.get(user, -math.inf):
                continue
            last_ts[user] = ts
            inside = set(tree.query(shapely.Point(lng, lat), predicate="within").tolist())
            open_ = visits.setdefault(user, {})
            for v in inside - open_.keys():
                open_[v] = ts  # ENTER
            for v in list(open_.keys() - inside):
                del open_[v]  # EXIT
            n += 1
    return time.process_time() - c0, n


def _memory_per_user(n_users: int) -> tuple[float, float]:
    """Bytes per tracked user with no open visit: tracemalloc and column arithmetic."""
    index = GeofenceIndex.build([])
    rng = np.random.default_rng(1)
    pings = PingBatch.from_columns(
        np.arange(n_users, dtype=np.int64) * 7919 + 10_000_000,
        np.full(n_users, T0), FAR_LAT + rng.uniform(-0.1, 0.1, n_users),
        FAR_LNG + rng.uniform(-0.1, 0.1, n_users), accuracy_m=np.full(n_users, 10.0))
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    state = new_state()
    state, _ = process_batch(state, index, pings, PresencePolicy(), T0)
    del pings
    gc.collect()
    traced = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    return traced / n_users, _column_bytes(state) / n_users


def _column_bytes(state: PresenceState) -> int:
    return sum(int(getattr(state, name).nbytes) for name in (
        "ids", "order", "last_ts", "anchor_ts", "anchor_lat", "anchor_lng", "reject_streak"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--pings", type=int, default=1_000_000)
    parser.add_argument("--baseline-pings", type=int, default=50_000)
    parser.add_argument("--quick", action="store_true", help="a tenth of the sizes")
    args = parser.parse_args(argv)
    if args.quick:
        args.users, args.pings, args.baseline_pings = (
            args.users // 10, args.pings // 10, args.baseline_pings // 10)

    ids, geoms = load_beijing_venues()
    index = GeofenceIndex.build([Fence(i, shape=g) for i, g in zip(ids, geoms, strict=True)])
    rows = []
    targets = {0.05: 1e6, 0.30: 3e5}
    for share, target in targets.items():
        batches = _workload(args.users, args.pings, share, geoms, seed=42)
        n = sum(len(b) for b in batches)
        cpu, n_events, open_visits = _engine(index, batches)
        b_cpu, b_n = _baseline(ids, geoms, batches, args.baseline_pings)
        rate, b_rate = n / cpu, b_n / b_cpu
        rows.append([f"{share:.0%} near venues", f"{n:,}", fmt_rate(rate), fmt_rate(target),
                     fmt_rate(b_rate), f"{rate / b_rate:.1f}x", f"{n_events:,}",
                     f"{open_visits:,}"])
    traced, columns = _memory_per_user(args.users)
    print(f"presence engine, {args.users:,} users, Beijing venues ({len(ids)}), "
          f"batches of one ping per user; CPU time of this process (one core)")
    print(format_table(
        ["workload", "pings", "engine", "target", "baseline*", "ratio", "events",
         "open visits"], rows))
    print(f"* baseline: per-ping STRtree + dict on {args.baseline_pings:,} pings, "
          f"rate extrapolated")
    print(f"memory per tracked user with no open visit: {traced:.0f} B (tracemalloc), "
          f"{columns:.0f} B of columns (ids are up to 8 digits here)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
