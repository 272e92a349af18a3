"""The ``geopush`` command line: one parser, subcommands registered by their modules.

Every subcommand reports bad input as ``geopush: error: FILE:LINE: field: message``
(exit status 2) and never as a traceback; see :class:`CliError`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from server import cli_locate, cli_serve, cli_simulate, cli_stats, cli_venues, cli_visits
from server.cli_common import CliError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="geopush",
        description="Location-triggered push: geofences, presence events, contextual offers.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    cli_venues.register(sub)
    cli_locate.register(sub)
    cli_visits.register(sub)
    cli_simulate.register(sub)
    cli_serve.register(sub)
    cli_stats.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status: int = args.func(args)
    except CliError as exc:
        print(f"geopush: error: {exc}", file=sys.stderr)
        return exc.exit_status
    except KeyboardInterrupt:
        print("geopush: interrupted", file=sys.stderr)
        return 130
    return status


if __name__ == "__main__":
    raise SystemExit(main())
