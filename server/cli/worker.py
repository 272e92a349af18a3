"""``geopush worker``: a worker of the partitioned mode (see :mod:`server.cluster.worker`)."""

from __future__ import annotations

import argparse

from server.cli.common import CliError

DESCRIPTION = """\
Own partitions of the ping stream on NATS JetStream and process them: presence in
memory, checkpoints in the JetStream object store, events, decisions and deliveries in
PostgreSQL. Start as many as needed; they share the partitions (leases in NATS KV). A
worker that dies loses its partitions after --lease-s. SIGTERM or SIGINT hands every
partition over (drain, checkpoint, release) and exits."""


def register(parser: argparse.ArgumentParser) -> None:
    """Define the ``worker`` arguments (imports nothing heavy: see ``__main__``)."""
    parser.description = DESCRIPTION
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--nats-url", "--nats", dest="nats_url", required=True,
                        metavar="URL[,URL...]", help="NATS servers")
    parser.add_argument("--database-url", metavar="URL",
                        help="PostgreSQL URL (DATABASE_URL)")
    parser.add_argument("--lease-s", type=float, default=10.0, metavar="S",
                        help="a lease not renewed for this long is free (default 10)")
    parser.add_argument("--checkpoint-interval-s", type=float, default=5.0, metavar="S",
                        help="seconds between checkpoints of a partition (default 5)")
    parser.add_argument("--timer-interval-s", type=float, default=1.0, metavar="S",
                        help="seconds between timer rounds of a partition (default 1)")
    parser.add_argument("--schedule-page-users", type=int, default=500, metavar="N",
                        help="profiles per page of a scheduled slot's fan-out (default 500)")
    parser.add_argument("--partitions", type=int, default=64, metavar="P",
                        help="partitions, if this worker creates the stream (default 64)")
    parser.add_argument("--replicas", type=int, default=1, metavar="R",
                        help="stream and bucket copies, if this worker creates them")
    parser.add_argument("--metrics-port", type=int, metavar="PORT",
                        help="serve /metrics and /healthz on this port")
    parser.add_argument("--id", dest="worker_id", metavar="ID",
                        help="worker id (default: random); letters, digits, - and _")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    import asyncio  # noqa: PLC0415 - see server.cli.__main__
    import re  # noqa: PLC0415

    from server.cluster.process import WorkerOptions, run_worker  # noqa: PLC0415
    from server.cluster.stream import StreamSettings, split_urls  # noqa: PLC0415
    from server.cluster.worker import WorkerSettings  # noqa: PLC0415
    from server.logs import configure_logging  # noqa: PLC0415
    from server.settings import SettingsError, load_settings  # noqa: PLC0415

    try:
        settings = load_settings(database_url=args.database_url)
    except SettingsError as exc:
        raise CliError(str(exc)) from exc
    if not settings.database_url:
        raise CliError("--database-url (or DATABASE_URL) is required: effects go to "
                       "PostgreSQL")
    urls = split_urls(args.nats_url)
    if not urls:
        raise CliError("--nats-url: no URL given")
    if args.schedule_page_users < 1:
        raise CliError(f"--schedule-page-users: {args.schedule_page_users} is not positive")
    if not args.lease_s > 0.5:
        raise CliError(f"--lease-s: {args.lease_s} is not above 0.5 s")
    if args.worker_id is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", args.worker_id):
        raise CliError("--id: 1 to 64 letters, digits, - or _")
    configure_logging(settings.log_format, settings.log_level)
    options = WorkerOptions(
        tuple(urls), settings.database_url,
        WorkerSettings(lease_s=args.lease_s, checkpoint_interval_s=args.checkpoint_interval_s,
                       timer_interval_s=args.timer_interval_s,
                       schedule_page_users=args.schedule_page_users),
        StreamSettings(partitions=args.partitions, replicas=args.replicas),
        metrics_port=args.metrics_port, worker_id=args.worker_id)
    asyncio.run(run_worker(options, settings))
    return 0
