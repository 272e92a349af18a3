"""Fitting the learning models on big event files: time and peak memory, one core.

``python -m tests.bench.bench_learning [--events 1000000] [--dir DIR]`` writes a generated
events CSV of about that many rows (tests/learning/synthetic.py, first world, users scaled)
unless DIR already holds it, then runs, each in a fresh process held to one thread:
reading the file once (the baseline: ``geopush interests predict`` cannot be faster than
a pass over the data), ``geopush interests fit`` and ``geopush sendtime fit``. It prints
wall and CPU seconds, peak RSS of each process and the ratio of each fit's CPU time to
the read baseline's.
Not collected by pytest.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from tests.bench._common import SINGLE_THREAD_ENV, format_table

EVENTS_PER_USER = 74
"""About what the first generated world gives a user over 56 days."""

_READ_ONLY = """
import sys
from server.cli.events_csv import read_events
from triggers.learning.coding import Vocabulary
u, c = Vocabulary(), Vocabulary()
print(sum(len(chunk.ts) for chunk in read_events(sys.argv[1], u, c, "reading")))
"""


def _measure(argv: list[str]) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds, peak RSS in MB) of one child process. CPU time is the
    figure to read on a shared machine: wall time grows with the other processes' load."""
    wrapper = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
               "u = resource.getrusage(resource.RUSAGE_CHILDREN); "
               "print(u.ru_utime + u.ru_stime, u.ru_maxrss, file=sys.stderr);"
               " sys.exit(r.returncode)")
    env = {**os.environ, **SINGLE_THREAD_ENV}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", wrapper, *argv], env=env, check=True,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - start
    cpu, peak_kb = done.stderr.strip().splitlines()[-1].split()
    return wall, float(cpu), int(peak_kb) / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--dir", type=Path, default=Path("out/bench_learning"))
    args = parser.parse_args(argv)
    args.dir.mkdir(parents=True, exist_ok=True)
    events = args.dir / f"events-{args.events}.csv"
    if not events.exists():
        from tests.learning.synthetic import World, write_csv  # noqa: PLC0415

        rows = write_csv(World(users=max(args.events // EVENTS_PER_USER, 100),
                               user_block=20_000), str(events))
        print(f"wrote {rows} events to {events}")
    geopush = [sys.executable, "-m", "server.cli"]
    runs = {
        "read the file once (baseline)": [sys.executable, "-c", _READ_ONLY, str(events)],
        "interests fit": [*geopush, "interests", "fit", "--events", str(events),
                          "--out", str(args.dir / "interests.npz")],
        "sendtime fit": [*geopush, "sendtime", "fit", "--events", str(events),
                         "--out", str(args.dir / "sendtime.npz"), "--timezone", "Asia/Shanghai"],
    }
    rows_out = []
    base = None
    for name, command in runs.items():
        wall, cpu, peak = _measure(command)
        base = base or cpu
        rows_out.append([name, f"{wall:.1f}", f"{cpu:.1f}", f"{cpu / base:.1f}x",
                         f"{peak:.0f}"])
    size = events.stat().st_size / 1e6
    print(f"{events} ({size:.0f} MB), one thread")
    print(format_table(["step", "wall s", "CPU s", "CPU vs read", "peak RSS MB"], rows_out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
