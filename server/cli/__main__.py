"""The ``geopush`` command line: one parser, subcommands defined by their modules.

The table :data:`COMMANDS` names each subcommand, the module that defines it and its
one-line help. Only the module of the subcommand being run is imported, and each
module's ``register`` imports nothing heavy (its ``run`` does), so ``geopush --help``
and ``geopush locate`` never load aiohttp, asyncpg, matplotlib, folium or the server
app (``tests/server/cli/test_startup.py``).

Every subcommand reports bad input as ``geopush: error: FILE:LINE: field: message``
(exit status 2) and never as a traceback; see :class:`~server.cli.common.CliError`.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import NamedTuple

from server.cli.common import CliError


class Command(NamedTuple):
    """A subcommand: its name, the module whose ``register(parser)`` defines its
    arguments and sets ``func``, and its line in ``geopush --help``."""

    name: str
    module: str
    help: str


COMMANDS: tuple[Command, ...] = (
    Command("simulate", "server.cli.simulate",
            "replay a scenario on a virtual clock: timeline, summary, map, plot"),
    Command("venues", "server.cli.venues",
            "check a venue file; show a venue's opening hours"),
    Command("locate", "server.cli.locate",
            "join points (CSV) to the venues that contain them"),
    Command("visits", "server.cli.visits",
            "replay pings (CSV) through the presence engine: enter, dwell, exit"),
    Command("serve", "server.cli.serve", "run the HTTP service"),
    Command("keys", "server.cli.keys", "create API keys in a PostgreSQL store"),
    Command("stats", "server.cli.stats", "a campaign's deliveries, CTR and lift"),
    Command("events", "server.cli.events", "import behaviour events (CSV or JSONL)"),
    Command("interests", "server.cli.interests",
            "learn and predict users' interest in categories from behaviour events"),
    Command("sendtime", "server.cli.sendtime",
            "learn and predict each user's best local hours from behaviour events"),
    Command("worker", "server.cli.worker",
            "process partitions of the ping stream (partitioned mode, NATS JetStream)"),
    Command("cluster", "server.cli.cluster",
            "the partitioned mode's partitions: owners, lag, checkpoints"),
    Command("model", "server.cli.model", "the learned model versions and their evaluation"),
)

SIGPIPE_STATUS = 128 + 13
"""Exit status after the reader of our output went away (``geopush ... | head``): what
a shell reports for a process ended by SIGPIPE."""


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The ``geopush`` parser.

    With ``only`` naming a subcommand, only that subcommand's module is imported and
    its arguments defined; the others are listed with their help line. ``None``
    defines every subcommand (for documentation and tests).
    """
    parser = argparse.ArgumentParser(
        prog="geopush",
        description="Location-triggered push: geofences, presence events, contextual offers.",
        epilog="geopush COMMAND --help describes a command.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        child = sub.add_parser(command.name, help=command.help, description=command.help)
        if only is None or only == command.name:
            importlib.import_module(command.module).register(child)
    return parser


def _command_word(argv: Sequence[str]) -> str | None:
    """The subcommand named in ``argv``: its first word that is not an option (the
    top level has no options that take a value)."""
    names = {c.name for c in COMMANDS}
    for word in argv:
        if not word.startswith("-"):
            return word if word in names else None
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``geopush``; returns the exit status."""
    words = list(sys.argv[1:] if argv is None else argv)
    only = _command_word(words)
    args = build_parser(only).parse_args(words)
    try:
        status: int = args.func(args)
        sys.stdout.flush()
    except CliError as exc:
        print(f"geopush: error: {exc}", file=sys.stderr)
        return exc.exit_status
    except KeyboardInterrupt:
        print("geopush: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader closed the pipe (`| head`): stop quietly. Point stdout at devnull
        # so that the interpreter's final flush does not fail again on the dead pipe.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return SIGPIPE_STATUS
    return status


if __name__ == "__main__":
    raise SystemExit(main())
