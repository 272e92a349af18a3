"""``geopush simulate``: replay a scenario through the engine on a virtual clock.

Prints a timeline (local time, user, venue, event, the push or why none) and a
summary; ``--json`` prints ``{"events", "decisions", "deliveries", "summary"}`` (plus
``expectations`` and ``backtest`` when there are some) to stdout instead. ``--map``
writes a Leaflet map, ``--plot`` a PNG timeline per user. ``--backtest CAMPAIGN.yaml``
evaluates a candidate campaign over the same pings without sending anything.

Exit status: 0 when every ``expect`` of the scenario is met, 1 when one is not (the
expected-vs-got diff goes to stderr), 2 when the scenario cannot be read.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from tqdm import tqdm

from server import sim_render
from server.cli_common import CliError
from server.scenario_files import ScenarioFileError, load_campaign, load_scenario
from triggers.errors import TriggerError
from triggers.simulation import check, simulate

TRACKED_USERS = 30
"""Users whose pings are kept for --map / --plot (the first ids in order)."""


def register(sub: Any) -> None:
    """Add the ``simulate`` subcommand to the ``geopush`` parser."""
    parser = sub.add_parser(
        "simulate",
        help="replay a scenario (virtual clock): timeline, summary, map, plot",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("scenario", metavar="SCENARIO.yaml", help="scenario file")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--map", metavar="OUT.html", type=Path, help="write a map")
    parser.add_argument("--plot", metavar="OUT.png", type=Path, help="write a timeline plot")
    parser.add_argument("--backtest", metavar="CAMPAIGN.yaml",
                        help="evaluate a candidate campaign over the scenario, sending nothing")
    parser.add_argument("--timeline-limit", type=int, default=400, metavar="N",
                        help="events shown in the timeline (default 400)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        scenario = load_scenario(args.scenario)
        candidate = load_campaign(args.backtest) if args.backtest else None
    except ScenarioFileError as exc:
        raise exc.as_cli_error() from None
    wants_tracks = args.map is not None or args.plot is not None
    with tqdm(total=1.0, unit="", file=sys.stderr, disable=None, leave=False,
              desc="simulating", bar_format="{l_bar}{bar}| {elapsed}<{remaining}") as bar:
        def progress(done: float, total: float) -> None:
            bar.n = done / total
            bar.refresh()

        try:
            result = simulate(scenario, candidate=candidate,
                              track_users=TRACKED_USERS if wants_tracks else 0,
                              progress=progress)
        except TriggerError as exc:
            raise CliError(str(exc), location=args.scenario) from exc
    outcomes = check(scenario.spec.expect, result)
    result.expectations = [o.as_json() for o in outcomes]

    if args.json:
        json.dump(result.to_json_obj(), sys.stdout, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        out = sys.stdout
        for line in sim_render.timeline_lines(result, scenario, args.timeline_limit):
            print(line, file=out)
        print(file=out)
        for line in sim_render.summary_lines(result):
            print(line, file=out)
        if result.backtest is not None:
            print(file=out)
            for line in sim_render.backtest_lines(result.backtest):
                print(line, file=out)
        if outcomes:
            met = sum(o.met for o in outcomes)
            print(f"\nExpectations: {met}/{len(outcomes)} met", file=out)
    for target, render in ((args.map, sim_render.render_map), (args.plot, sim_render.render_plot)):
        if target is None:
            continue
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            render(result, scenario, target)
        except OSError as exc:
            raise CliError(exc.strerror or str(exc), location=str(target)) from exc
        print(f"geopush simulate: wrote {target}", file=sys.stderr)

    unmet = [o for o in outcomes if not o.met]
    for o in unmet:
        print(f"geopush simulate: expectation expect[{o.index}] not met\n"
              f"  - expected: {o.expected}\n  + got:      {o.got}", file=sys.stderr)
    return 1 if unmet else 0
