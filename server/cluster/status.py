"""What ``geopush cluster status`` reports: every partition's owner, lease expiry, the
stream sequence it reached, its lag and its checkpoint's age, read from the lease
bucket (owners renew their leases with their progress every third of the lease time,
so the figures are at most that old) and the stream (its last sequence)."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

from server.cluster.leases import read_all
from server.cluster.stream import STREAM, Cluster


@dataclass(frozen=True, slots=True)
class PartitionStatus:
    partition: int
    owner: str | None
    lease_left_s: float
    position: int
    lag_messages: int
    checkpoint_seq: int
    checkpoint_age_s: float | None


@dataclass(frozen=True, slots=True)
class ClusterStatus:
    partitions: list[PartitionStatus]
    workers: list[str]
    stream_messages: int
    stream_last_seq: int

    def as_json(self) -> dict[str, Any]:
        return {"workers": self.workers, "stream": {"name": STREAM,
                "messages": self.stream_messages, "last_seq": self.stream_last_seq},
                "partitions": [asdict(p) for p in self.partitions]}


async def cluster_status(cluster: Cluster) -> ClusterStatus:
    """Read the status (no lease is touched)."""
    leases, workers = await read_all(cluster.leases, cluster.partitions)
    info = await cluster.js.stream_info(STREAM)
    now = time.time()
    rows = []
    for partition, lease in sorted(leases.items()):
        owned = not lease.free(now)
        rows.append(PartitionStatus(
            partition, lease.owner if owned else None,
            round(max(0.0, lease.expires_at - now), 1) if owned else 0.0,
            lease.position, lease.pending, lease.checkpoint_seq,
            round(now - lease.checkpoint_at, 1) if lease.checkpoint_at else None))
    return ClusterStatus(rows, workers, int(info.state.messages), int(info.state.last_seq))


def render(status: ClusterStatus) -> str:
    """The status as a table, one line per partition, a summary line first."""
    owned = sum(p.owner is not None for p in status.partitions)
    lag = sum(p.lag_messages for p in status.partitions)
    lines = [f"stream {STREAM}: {status.stream_messages} messages, last sequence "
             f"{status.stream_last_seq}; {len(status.workers)} live workers; "
             f"{owned}/{len(status.partitions)} partitions owned; lag {lag} messages",
             f"{'partition':>9}  {'owner':<14} {'lease_s':>7} {'position':>9} "
             f"{'lag':>6} {'checkpoint':>10} {'ckpt_age_s':>10}"]
    for p in status.partitions:
        age = "-" if p.checkpoint_age_s is None else f"{p.checkpoint_age_s:.1f}"
        lines.append(f"{p.partition:>9}  {p.owner or '(free)':<14} {p.lease_left_s:>7.1f} "
                     f"{p.position:>9} {p.lag_messages:>6} {p.checkpoint_seq:>10} {age:>10}")
    return "\n".join(lines)
