"""Prometheus metrics of one app, in the app's own registry (no global registry, so two
apps in one process — tests — never share or clash on counters).

Counters are per process: Prometheus sums them across nodes; none of them is the source
of truth for anything (DESIGN, scale-out).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import TYPE_CHECKING

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

_BATCH_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
"""A 1000-ping batch should take milliseconds; the tail buckets catch a slow database."""


if TYPE_CHECKING:
    from server.pipeline import IngestResult


class Metrics:
    """The service's metrics, registered in :attr:`registry`."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.pings_accepted = Counter(
            "geopush_pings_accepted", "Pings accepted by the engine", ["source"], registry=r)
        self.pings_rejected = Counter(
            "geopush_pings_rejected",
            "Pings rejected, by reason (validation code, or the engine's hygiene rule)",
            ["reason"], registry=r)
        self.pings_pruned = Counter(
            "geopush_pings_pruned", "Raw pings deleted after the retention period",
            registry=r)
        self.events = Counter(
            "geopush_events", "Presence events, by kind", ["kind"], registry=r)
        self.decisions = Counter(
            "geopush_decision_outcomes",
            "Campaigns considered per event, by reason (sent, cooldown, quiet_hours, ...)",
            ["reason"], registry=r)
        self.deliveries = Counter(
            "geopush_deliveries_created", "Deliveries put in the outbox", registry=r)
        self.batch_latency = Histogram(
            "geopush_batch_seconds", "Time to ingest one ping batch (validation excluded)",
            ["source"], buckets=_BATCH_BUCKETS_S, registry=r)
        self.outbox_depth = Gauge(
            "geopush_outbox_depth", "Deliveries waiting in the outbox (sampled per scrape)",
            registry=r)
        self.rate_limit_leases = Counter(
            "geopush_rate_limit_leases",
            "Calls to the shared rate-limit buckets, by outcome (leased, denied, failed)",
            ["outcome"], registry=r)
        self.timer_errors = Counter(
            "geopush_timer_errors", "Timer-loop items that failed and were skipped", registry=r)

    def count_result(self, result: IngestResult) -> None:
        """Count what one ingest or timer round produced: events, decision reasons, deliveries."""
        for event in result.events:
            self.events.labels(kind=event.kind.value).inc()
        for decision in result.decisions:
            for considered in decision.considered:
                self.decisions.labels(reason=considered.reason.value).inc()
        self.deliveries.inc(len(result.deliveries))

    def count_rejections(self, by_reason: Mapping[str, int]) -> None:
        for reason, n in by_reason.items():
            if n:
                self.pings_rejected.labels(reason=reason).inc(n)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class PartitionMetrics:
    """A partitioned-mode worker's view of its partitions (``geopush worker``): per
    owned partition, the stream sequence processed, the messages still pending after it
    (the lag) and the time of its last checkpoint. A partition handed over is removed,
    so the gauges sum to the cluster's totals across workers."""

    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.lag = Gauge("geopush_partition_lag_messages",
                         "Stream messages of the partition not processed yet", ["partition"],
                         registry=r)
        self.position = Gauge("geopush_partition_position",
                              "Last stream sequence processed", ["partition"], registry=r)
        self.checkpoint_time = Gauge("geopush_partition_checkpoint_timestamp_seconds",
                                     "Wall time of the partition's last checkpoint",
                                     ["partition"], registry=r)
        self.owned = Gauge("geopush_partitions_owned", "Partitions this worker owns",
                           registry=r)
        self._known: set[int] = set()

    def observe(self, partition: int, *, position: int, pending: int) -> None:
        label = str(partition)
        self.lag.labels(partition=label).set(pending)
        self.position.labels(partition=label).set(position)
        self._known.add(partition)
        self.owned.set(len(self._known))

    def checkpointed(self, partition: int, at: float) -> None:
        self.checkpoint_time.labels(partition=str(partition)).set(at)
        self._known.add(partition)
        self.owned.set(len(self._known))

    def forget(self, partition: int) -> None:
        label = str(partition)
        for gauge in (self.lag, self.position, self.checkpoint_time):
            with contextlib.suppress(KeyError):
                gauge.remove(label)
        self._known.discard(partition)
        self.owned.set(len(self._known))

