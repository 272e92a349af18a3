"""``geopush cluster status``: the partitioned mode's partitions, owners, lag and
checkpoints (see :mod:`server.cluster.status`)."""

from __future__ import annotations

import argparse

from server.cli.common import CliError

DESCRIPTION = """\
Show the partitioned mode's state from NATS: for each partition its owner (or free),
the time left on its lease, the stream sequence processed, the messages still waiting
(lag) and the checkpoint's sequence and age. Exit status 2 when NATS or the stream
cannot be reached."""


def register(parser: argparse.ArgumentParser) -> None:
    """Define the ``cluster`` arguments (imports nothing heavy: see ``__main__``)."""
    parser.description = DESCRIPTION
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    sub = parser.add_subparsers(dest="cluster_command", required=True, metavar="COMMAND")
    status = sub.add_parser("status", help="partitions, owners, lag, checkpoint age",
                            description=DESCRIPTION)
    status.add_argument("--nats-url", "--nats", dest="nats_url", required=True,
                        metavar="URL[,URL...]", help="NATS servers")
    status.add_argument("--json", action="store_true", help="print JSON")
    status.set_defaults(func=_status)


def _status(args: argparse.Namespace) -> int:
    import asyncio  # noqa: PLC0415 - see server.cli.__main__
    import json  # noqa: PLC0415

    from server.cluster.status import cluster_status, render  # noqa: PLC0415
    from server.cluster.stream import ClusterSetupError, open_cluster  # noqa: PLC0415

    async def read() -> str:
        cluster = await open_cluster(args.nats_url, create=False, name="geopush-status")
        try:
            status = await cluster_status(cluster)
        finally:
            await cluster.close()
        return json.dumps(status.as_json(), indent=2) if args.json else render(status)

    try:
        print(asyncio.run(read()))
    except ClusterSetupError as exc:
        raise CliError(str(exc)) from exc
    return 0
