"""Run the benchmarks: ``python3 dev.py bench [--quick] [--only geo|presence|...|locate]``.

Everything runs on one thread per library (the figures are per core): the thread-pool
variables are set here before numpy, shapely or h3ronpy is imported, and the build
subprocesses inherit them. Results are printed as tables and written as JSON to
``out/bench.json`` (``--json PATH`` to change). See BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SECTIONS = ("geo", "presence", "simulate", "delivery", "decide", "service", "locate",
            "events", "scheduled")


def _parser(add_geo_arguments: object) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dev.py bench",
        description="geopush benchmarks (see BENCHMARKS.md)",
    )
    parser.add_argument("--quick", action="store_true",
                        help="smaller sizes (1k/10k venue builds, 200k points): under 2 min")
    parser.add_argument("--only", choices=SECTIONS, default=None,
                        help="run only one benchmark section")
    parser.add_argument("--json", type=Path, default=ROOT / "out" / "bench.json",
                        help="where to write the results (default out/bench.json)")
    if callable(add_geo_arguments):
        add_geo_arguments(parser)
    return parser


def _run_section(name: str, quick: bool) -> dict[str, object]:
    """Run ``tests/bench/bench_<name>.py``'s ``main``, which prints its own table."""
    module = f"tests.bench.bench_{name}"
    try:
        section = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name != module:
            raise
        print(f"{name} benchmark not available ({module} is missing)")
        return {"available": False}
    t0 = time.perf_counter()
    try:
        rc = int(section.main(["--quick"] if quick else []))
    except Exception:  # one broken section must not lose the other's results
        traceback.print_exc()
        rc = 1
    return {"available": True, "rc": rc, "wall_s": time.perf_counter() - t0}


def main(argv: list[str] | None = None) -> int:
    # Before anything imports numpy/shapely/h3ronpy: per-core figures, one thread each.
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    common = importlib.import_module("tests.bench._common")
    common.force_single_thread_env()
    bench_geo = importlib.import_module("tests.bench.bench_geo")

    args = _parser(bench_geo.add_arguments).parse_args(argv)
    machine = common.machine_info()
    print(f"geopush benchmarks, {machine['date']}")
    print(f"machine: {machine['cpu']}, {machine['cores']} cores, {machine['memory_gib']} GiB, "
          f"{machine['os']}, Python {machine['python']}; load average at start "
          f"{machine['loadavg_at_start']}")
    print("one thread per library: " + ", ".join(f"{k}={v}" for k, v in
                                                  common.SINGLE_THREAD_ENV.items()))
    payload: dict[str, object] = {"machine": machine, "quick": args.quick}
    rc = 0
    t0 = time.perf_counter()
    if args.only in (None, "geo"):
        try:
            payload["geo"] = bench_geo.run(args)
        except Exception:  # one broken section must not lose the other's results
            traceback.print_exc()
            payload["geo"] = {"error": "the geo benchmark failed; traceback above"}
            rc = 1
        print()
    for name, title in (("presence", "Presence engine"), ("simulate", "Simulated day"),
                        ("delivery", "Delivery"), ("decide", "Campaign decisions"),
                        ("service", "HTTP service"), ("locate", "geopush locate"),
                        ("events", "Behaviour events"),
                        ("scheduled", "Scheduled fan-out")):
        if args.only in (None, name):
            print(f"== {title}")
            section = _run_section(name, args.quick)
            payload[name] = section
            section_rc = section.get("rc", 0)
            rc = max(rc, section_rc if isinstance(section_rc, int) else 1)
            print()
    payload["total_wall_s"] = time.perf_counter() - t0
    with contextlib.suppress(OSError):
        payload["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    common.write_json(args.json, payload)
    print(f"\nresults written to {args.json} ({payload['total_wall_s']:.0f} s in all)")
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
