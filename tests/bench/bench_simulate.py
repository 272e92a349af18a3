"""Benchmark: one simulated day of a crowd through the scenario engine (issue 5).

The issue's target: 10,000 users pinging every 30 s for 24 h (~29 M pings) on one core,
with flat memory, in at most 5 minutes. Each user lives a Beijing day: home near a
random subway station, a ride to another station, a working day near it, a ride back,
home — generated window by window (``triggers.simulation.stream``), fed through
``process_batch``/``advance`` and ``decide`` with route-tip and dwell campaigns. The run
keeps counters only (no per-event records), as a back-test over a day would.

    python tests/bench/bench_simulate.py [--quick] [--users N] [--hours H]

Prints pings, pings/s, wall time and peak RSS (whole process, and the growth during the
run). Figures depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.bench._common import BEIJING_VENUES, force_single_thread_env

force_single_thread_env()

from triggers.simulation import ScenarioSpec, build, simulate  # noqa: E402
from venues import load_venues  # noqa: E402

_START = "2026-11-25T00:00:00+08:00"
_DAY_ROUTE = [
    "near:kind=transit_station~700",     # home
    "wait:21600-28800",                  # night until 06:00-08:00
    "entrance",
    "venue:kind=transit_station",        # morning station
    "wait:60-300",
    "venue:kind=transit_station@12",     # ride (12 m/s average with stops)
    "wait:60-180",
    "near:kind=transit_station~600",     # work near some station
    "wait:28800-34200",
    "venue:kind=transit_station",
    "wait:60-300",
    "venue:kind=transit_station@12",
    "near:kind=transit_station~700",
    "wait:86400",                        # home, until the day ends
]


def _spec(users: int, hours: float) -> ScenarioSpec:
    return ScenarioSpec.model_validate({
        "name": f"bench: {users} users, {hours:g} h, 30 s pings",
        "start": _START,
        "end": (datetime.fromisoformat(_START) + timedelta(hours=hours)).isoformat(),
        "timezone": "Asia/Shanghai",
        "batch_s": 30,
        "campaigns": [
            {"id": "route-tip", "trigger": {"event": "enter"},
             "venues": {"kinds": ["transit_station"]},
             "caps": {"per_user": {"count": 2, "period_s": 86400}},
             "variants": [{"id": "a", "title": "{{ route.station }}",
                           "body": "{{ route.lines | map(attribute='name') | join(', ') }}"}]},
            {"id": "station-dwell", "trigger": {"event": "dwell", "dwell_s": 300},
             "venues": {"kinds": ["transit_station"]}, "control_pct": 10,
             "variants": [{"id": "a", "title": "Coffee?", "body": "At {{ venue.name }}"}]},
        ],
        "users": {"count": users, "id_prefix": "u", "start_spread_s": 60,
                  "generate": {"route": _DAY_ROUTE, "interval_s": 30, "noise_m": 8,
                               "accuracy_m": [5, 25], "latency_s": 2}},
    })


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="500 users, 24 h")
    parser.add_argument("--users", type=int, default=None)
    parser.add_argument("--hours", type=float, default=24.0)
    args = parser.parse_args(argv)
    users = args.users or (500 if args.quick else 10_000)

    venues = tuple(load_venues(BEIJING_VENUES).venues)
    scenario = build(_spec(users, args.hours), venues)
    rss_before = _rss_mb()
    t0 = time.perf_counter()
    result = simulate(scenario, keep_records=False)
    wall = time.perf_counter() - t0
    pings = result.counters.get("received", 0)
    summary = result.summary()
    print(f"simulate: {users} users × {args.hours:g} h at 30 s pings")
    print(f"  pings          {pings:,}")
    print(f"  wall           {wall:,.1f} s")
    print(f"  pings/s        {pings / wall:,.0f}")
    print(f"  events         {sum(summary['events'].values()):,} "
          f"(visits {summary['visits']:,}); pushes {summary['pushes']:,}")
    print(f"  peak RSS       {_rss_mb():,.0f} MB (before the run {rss_before:,.0f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
