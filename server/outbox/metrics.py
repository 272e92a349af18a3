"""Outbox metrics, registered in the app's own Prometheus registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from server.channels.base import SendResult

_SEND_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                   10.0)
"""An in-app or broker send takes a millisecond; push services and SMTP up to seconds."""
_LAG_BUCKETS_S = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0)


class OutboxMetrics:
    """Per-channel outcomes of the dispatcher and the time sends take."""

    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.sent = Counter("geopush_outbox_sent", "Deliveries a channel accepted",
                            ["channel"], registry=r)
        self.retried = Counter("geopush_outbox_retried",
                               "Sends that failed transiently and were scheduled again",
                               ["channel"], registry=r)
        self.dead = Counter("geopush_outbox_dead_lettered",
                            "Deliveries given up, by channel and cause (failed, "
                            "token_invalid, attempts, no_channel)",
                            ["channel", "cause"], registry=r)
        self.expired = Counter("geopush_outbox_expired",
                               "Offers whose TTL passed before they could be sent",
                               ["channel"], registry=r)
        self.ignored = Counter("geopush_outbox_ignored",
                               "Sent offers whose TTL passed without any reaction",
                               ["channel"], registry=r)
        self.tokens_removed = Counter("geopush_outbox_tokens_removed",
                                      "Dead addresses removed from profiles", ["channel"],
                                      registry=r)
        self.send_seconds = Histogram("geopush_outbox_send_seconds",
                                      "Time one channel send took, by channel and result",
                                      ["channel", "result"], buckets=_SEND_BUCKETS_S,
                                      registry=r)
        self.lag_seconds = Histogram("geopush_outbox_delivery_lag_seconds",
                                     "From the delivery's creation to the channel's accept",
                                     ["channel"], buckets=_LAG_BUCKETS_S, registry=r)
        self.errors = Counter("geopush_outbox_errors",
                              "Dispatcher rounds that failed and were skipped", registry=r)
        self.streams = Gauge("geopush_stream_users",
                             "Users with a live in-app stream on this node", registry=r)
        self.fanout = Counter("geopush_stream_fanout",
                              "Cross-node live stream notices, by event: published, "
                              "published_reference, publish_failed, received (from "
                              "another node), delivered (to a stream here), offline (no "
                              "stream here), unreadable, listener_lost, "
                              "presence_failed, presence_write_failed",
                              ["event"], registry=r)

    def observe_send(self, channel: str, result: SendResult, elapsed_s: float) -> None:
        """A :class:`~server.channels.base.SendObserver`."""
        self.send_seconds.labels(channel=channel, result=result.kind).observe(elapsed_s)

    def observe_fanout(self, event: str) -> None:
        """A :data:`~server.channels.pg_fanout.FanoutObserver`."""
        self.fanout.labels(event=event).inc()
