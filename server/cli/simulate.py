"""``geopush simulate``: replay a scenario through the engine on a virtual clock.

Prints a timeline and a summary (:mod:`server.cli.render`); ``--json`` prints
``{"events", "decisions", "deliveries", "summary"}`` (plus ``expectations`` and
``backtest`` when there are some) to stdout instead. ``--map`` writes a self-contained
Leaflet map, ``--plot`` a PNG timeline per user. Exit status: see :data:`DESCRIPTION`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from server.cli.common import CliError

TRACKED_USERS = 30
"""Users whose pings are kept for --map / --plot (the first ids in order)."""

DESCRIPTION = """\
Replay a scenario through the engine on a virtual clock. Prints a timeline (local
time, user, venue, event, the push or why none) and a summary.

exit status: 0 when every expect of the scenario is met, 1 when one is not (the
expected-vs-got diff goes to stderr), 2 when the scenario cannot be read."""


def register(parser: argparse.ArgumentParser) -> None:
    """Define the ``simulate`` arguments (imports nothing heavy: see ``__main__``)."""
    parser.description = DESCRIPTION
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("scenario", metavar="SCENARIO.yaml", help="scenario file")
    parser.add_argument("--json", action="store_true",
                        help="print events, decisions, deliveries and the summary as JSON")
    parser.add_argument("--map", metavar="OUT.html", type=Path,
                        help="write a map (one HTML file that works offline)")
    parser.add_argument("--plot", metavar="OUT.png", type=Path,
                        help="write a timeline plot: visits and pushes per user")
    parser.add_argument("--backtest", metavar="CAMPAIGN.yaml",
                        help="evaluate a candidate campaign over the scenario, sending nothing")
    parser.add_argument("--timeline-limit", type=int, default=400, metavar="N",
                        help="events shown in the timeline (default 400)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:  # noqa: PLR0912 - a branch per option or error message
    """The ``simulate`` command: returns the exit status, raises :class:`CliError`."""
    from tqdm import tqdm  # noqa: PLC0415 - heavy imports run, not register

    from server.cli import render  # noqa: PLC0415
    from server.cli.scenario_files import (  # noqa: PLC0415
        ScenarioFileError,
        load_campaign,
        load_scenario,
    )
    from triggers.errors import TriggerError  # noqa: PLC0415
    from triggers.simulation import check, simulate  # noqa: PLC0415
    from triggers.simulation.response import response_lines  # noqa: PLC0415

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
        for line in render.timeline_lines(result, scenario, args.timeline_limit):
            print(line, file=out)
        print(file=out)
        for line in render.summary_lines(result):
            print(line, file=out)
        if result.backtest is not None:
            print(file=out)
            for line in render.backtest_lines(result.backtest):
                print(line, file=out)
        if result.response is not None:
            print(file=out)
            for line in response_lines(result.response):
                print(line, file=out)
        if outcomes:
            met = sum(o.met for o in outcomes)
            print(f"\nExpectations: {met}/{len(outcomes)} met", file=out)
    for target, draw in ((args.map, render.render_map), (args.plot, render.render_plot)):
        if target is None:
            continue
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            draw(result, scenario, target)
        except OSError as exc:
            raise CliError(exc.strerror or str(exc), location=str(target)) from exc
        print(f"geopush simulate: wrote {target}", file=sys.stderr)

    unmet = [o for o in outcomes if not o.met]
    for o in unmet:
        print(f"geopush simulate: expectation expect[{o.index}] not met\n"
              f"  - expected: {o.expected}\n  + got:      {o.got}", file=sys.stderr)
    return 1 if unmet else 0
