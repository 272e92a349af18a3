"""``geopush worker``: owns partitions of the ping stream and runs the engine on them.

Each owned partition has one task (:class:`PartitionRunner`) that, one round after
another: reads the messages waiting on its ordered consumer (up to
``fetch_max``), processes them in stream order with :func:`server.pipeline.ingest` at
each message's own ``now``, all in one PostgreSQL transaction
(:class:`~server.cluster.partition_store.PartitionStore`), fires the partition's due
timers (:func:`server.pipeline.fire_all_timers` on the partition's tenants), and
checkpoints every ``checkpoint_interval_s``. Presence lives in memory; effects go to
PostgreSQL under the pipeline's idempotency keys, so a replay never doubles them.

Timers never run ahead of the stream: they fire at the wall time of a check that asked
JetStream for the partition's last sequence, once the partition has processed up to
it (:meth:`PartitionRunner.caught_up_at`). While JetStream cannot answer, or the
partition is behind that sequence, they wait; nothing due is lost, it fires later. A
partition whose stream holds messages past its position while its consumer delivers
none for ``stall_s`` gets a new consumer from its position (the old one sat on a NATS
node that died).

The worker's own loop (:meth:`Worker.run`), every third of the lease time: heartbeat,
renew the leases it holds (a lease it cannot renew is dropped at once, its task
stopped without a checkpoint: somebody else owns the partition now), and rebalance to
its fair share, ``ceil(P / live workers)``:

- **over its share** (a worker joined): hand partitions over — *drain* (the task ends
  after its current round), *checkpoint* (state and the sequence reached), *release*
  the lease (free at once);
- **under its share** (a worker left or died): take free or expired leases, starting
  at a place given by its id so that workers do not all race for partition 0; a taken
  partition *restores* its checkpoint and *replays* the stream from the sequence after.

A taken partition restores in its own task (retried until JetStream answers): a lease
round never waits on a restore, so the leases it holds are renewed in time. A worker
killed with ``kill -9`` releases nothing: its leases expire ``lease_s`` after their last
renewal and the others take them in their next round.

A failure while processing (the database went away) throws the partition's memory
away, restores the last checkpoint and replays after a pause: the in-memory state may
be ahead of what was committed, the checkpoint never is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.js.api import ConsumerConfig, DeliverPolicy

from server.cluster import checkpoints
from server.cluster.behaviour import ingest_event_groups
from server.cluster.events import EventGroup, decode_message, in_stream_steps
from server.cluster.leases import DEFAULT_LEASE_S, LeaseTable, read_all
from server.cluster.partition_store import PartitionStore
from server.cluster.partitions import (
    MessageError,
    PingGroup,
    partition_filter,
    plan_runs,
)
from server.cluster.stream import (
    PARTITION_REQUEST_S,
    STREAM,
    Cluster,
    StreamMark,
    last_sequence,
)
from server.learner import ProfileLearner, ended_visits
from server.metrics import Metrics, PartitionMetrics
from server.outages import FailureLog
from server.pipeline import IngestResult, PipelineError, fire_all_timers, ingest_parts
from server.store import PostgresStore
from server.store.errors import NotFoundError
from server.tenant_core import CoreBuildError, TenantCores

log = logging.getLogger("geopush.worker")


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    """A worker's timings and sizes (the partition count is the stream's)."""

    lease_s: float = DEFAULT_LEASE_S
    checkpoint_interval_s: float = 5.0
    timer_interval_s: float = 1.0
    """Due timers are fired this often (0: only when asked, :meth:`Worker.fire_timers`)."""
    fetch_max: int = 500
    """Messages per PostgreSQL transaction at most."""
    run_max_pings: int = 2_000
    """Pings per engine pass (consecutive messages of one tenant, users disjoint)."""
    idle_wait_s: float = 0.25
    """How long a round waits for a first message before doing its timers (a message
    that comes is taken at once; this only bounds an idle partition's wake-ups)."""
    retry_s: float = 0.5
    """Pause after a failed round before restoring and replaying."""
    schedule_page_users: int = 500
    """Profiles per page of a scheduled slot's walk (:mod:`server.cluster.schedule`)."""
    stall_s: float = 2.0
    """A partition whose stream holds messages past its position, and whose consumer
    delivered none for this long, gets a new consumer (nats-py's own recovery waits for
    two missed 5 s heartbeats and tries once; after a node died, JetStream may place
    that one on the dead node again)."""


@dataclass
class WorkerParts:
    """What a worker shares between its partitions."""

    cluster: Cluster
    store: PostgresStore
    cores: TenantCores
    settings: WorkerSettings
    metrics: Metrics
    partition_metrics: PartitionMetrics
    clock: Callable[[], float] = time.time
    learner: ProfileLearner | None = None
    """Told of the users whose visits ended, once the round that ended them committed
    (as a node tells its own)."""


class PartitionRunner:
    """One owned partition: its consumer, its state, its processing task."""

    def __init__(self, parts: WorkerParts, partition: int, worker_id: str,
                 valid: Callable[[], bool]) -> None:
        """``valid()``: whether the lease still allows processing (checked each round)."""
        self.parts = parts
        self._valid = valid
        self.partition = partition
        self.worker_id = worker_id
        self.position = 0
        self.pending = 0
        self.checkpoint_seq = 0
        self.checkpoint_at = 0.0
        self.lock = asyncio.Lock()
        self._store: PartitionStore | None = None
        self._sub: Any = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._timers_at = 0.0
        self._ended: list[tuple[str, list[str]]] = []
        """(tenant, users) whose visits the round in progress ended."""
        self._checkpoint_due = 0.0
        """Monotonic time of the next periodic checkpoint."""
        self._restored = False
        """Whether memory and consumer match the last checkpoint plus what was processed
        since (False: restore before the next round)."""
        self._mark: StreamMark | None = None
        """The last answered check of the partition's stream: the timers' fence."""
        self._marked_at = 0.0
        """Monotonic time of that answer."""
        self._delivered_at = 0.0
        """Monotonic time the consumer last delivered a message (or was created)."""
        self._checked_at = 0.0
        """Monotonic time the stall watch last asked the stream."""
        self._requests = parts.cluster.nc.jetstream(timeout=PARTITION_REQUEST_S)
        self._failures = FailureLog(log, f"partition {partition}")

    # -- life cycle ---------------------------------------------------------------

    def start(self) -> None:
        """Start the task: it restores the checkpoint and subscribes from the sequence
        after it (retried until JetStream answers), then runs its rounds."""
        self._task = asyncio.create_task(self._run(), name=f"geopush-partition-{self.partition}")

    @property
    def restored(self) -> bool:
        """Whether the partition runs from its restored checkpoint (not waiting on it)."""
        return self._restored

    async def _restore(self) -> None:
        self._restored = False
        found = await checkpoints.load(self.parts.cluster.checkpoints, self.partition)
        self._store = PartitionStore(self.parts.store, found)
        self.position = self.checkpoint_seq = found.seq
        self.checkpoint_at = found.written_at
        await self._subscribe()
        self._restored = True
        self._failures.succeeded("restoring")
        log.info("worker %s: partition %d at sequence %d", self.worker_id, self.partition,
                 self.position)

    async def _subscribe(self) -> None:
        await self._unsubscribe()
        js = self._requests
        self._delivered_at = time.monotonic()
        if self.position:
            self._sub = await js.subscribe(
                partition_filter(self.partition), stream=STREAM, ordered_consumer=True,
                deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                config=ConsumerConfig(opt_start_seq=self.position + 1))
        else:
            self._sub = await js.subscribe(partition_filter(self.partition), stream=STREAM,
                                           ordered_consumer=True,
                                           deliver_policy=DeliverPolicy.ALL)

    async def _unsubscribe(self) -> None:
        sub, self._sub = self._sub, None
        if sub is not None:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def stop(self, *, checkpoint: bool) -> None:
        """End the task after its current round; with ``checkpoint`` (a handover or a
        shutdown, not a lost lease) write the checkpoint first (unless the partition was
        never restored: then the stored one is still the latest)."""
        self._stopping = True
        if self._task is not None:
            await asyncio.wait({self._task})
        try:
            if checkpoint and self._restored:
                async with self.lock:
                    await self._checkpoint()
        finally:
            await self._unsubscribe()
            self.parts.partition_metrics.forget(self.partition)

    def abandon(self) -> None:
        """Stop at once without a checkpoint (the lease is lost: not ours to write); the
        task's end removes its consumer."""
        self._stopping = True
        if self._task is not None:
            self._task.cancel()

    # -- the rounds ---------------------------------------------------------------

    async def _run(self) -> None:
        try:
            while not self._stopping:
                if not self._valid():
                    # The lease could have expired: do nothing until the worker renews
                    # it or gives the partition up.
                    await asyncio.sleep(self.parts.settings.idle_wait_s)
                    continue
                if not self._restored:
                    await self._try_restore()
                    continue
                try:
                    await self._round()
                    self._failures.succeeded("processing")
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    # Memory may be ahead of what was committed, and the consumer past
                    # it: both start again from the checkpoint.
                    self._failures.failed("processing", exc)
                    self._restored = False
                    await asyncio.sleep(self.parts.settings.retry_s)
        finally:
            await self._unsubscribe()

    async def _try_restore(self) -> None:
        try:
            async with self.lock:
                await self._restore()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # JetStream cannot answer yet (an election), or the checkpoint's chunk
            # reader was placed on a dead node: try again.
            self._failures.failed("restoring", exc)
            await asyncio.sleep(self.parts.settings.retry_s)

    async def _round(self) -> None:
        messages = await self._fetch()
        async with self.lock:
            if messages:
                await self._process(messages)
            await self._maybe_timers()
            await self._maybe_checkpoint()
        if not messages:
            await self._watch_consumer()

    async def _fetch(self) -> list[Msg]:
        settings = self.parts.settings
        if self._sub is None:  # the last consumer could not be created: the watch retries
            await asyncio.sleep(settings.idle_wait_s)
            return []
        try:
            first = await self._sub.next_msg(timeout=settings.idle_wait_s)
        except TimeoutError:
            return []
        self._delivered_at = time.monotonic()
        messages = [first]
        while self._sub.pending_msgs and len(messages) < settings.fetch_max:
            try:
                messages.append(await self._sub.next_msg(timeout=settings.idle_wait_s))
            except TimeoutError:
                break  # counted but not handed out (a status message): take what came
        return messages

    async def _process(self, messages: list[Msg]) -> None:
        assert self._store is not None
        position, pending = self.position, self.pending
        groups = []
        for msg in messages:
            meta = msg.metadata
            seq = meta.sequence.stream
            if seq <= position:
                continue  # redelivered after a consumer reset: processed already
            groups.append((seq, self._decode(msg, seq)))
            position, pending = seq, meta.num_pending
        valid = [g for _, g in groups if g is not None]
        for pings, events in in_stream_steps(valid):
            await self._pings(pings)
            await ingest_event_groups(self.parts.store, self.parts.cores, events)
        self.position, self.pending = position, pending
        self.parts.partition_metrics.observe(self.partition, position=position,
                                             pending=pending)

    async def _pings(self, valid: list[PingGroup]) -> None:
        assert self._store is not None
        if not valid:
            return
        await self._store.prepare(self.parts.cores, (g.tenant_id for g in valid))
        self._ended.clear()
        async with self._store.session():
            for run in plan_runs(valid, self.parts.settings.run_max_pings):
                await self._run_of(run)
        self._tell_learner()

    def _decode(self, msg: Msg, seq: int) -> PingGroup | EventGroup | None:
        try:
            return decode_message(msg.data, msg.headers)
        except MessageError as exc:
            log.warning("partition %d: message %d skipped: %s", self.partition, seq, exc)
            return None

    async def _run_of(self, run: list[PingGroup]) -> None:
        """One engine pass over a run of messages, at the latest ``now`` among them (a
        message alone: its own ``now``, so a replay gives the same decisions)."""
        assert self._store is not None
        tenant_id = run[0].tenant_id
        try:
            results = await ingest_parts(self._store, self.parts.cores, tenant_id,
                                         [g.pings for g in run], now=max(g.now for g in run))
        except (PipelineError, NotFoundError, CoreBuildError) as exc:
            if len(run) > 1:
                for group in run:  # find the one that fails; the others go through
                    await self._run_of([group])
                return
            # The same input would fail the same way on every replay: skip it.
            log.warning("partition %d: a message of tenant %s skipped: %s", self.partition,
                        tenant_id, exc)
            return
        for result in results:
            self._count(tenant_id, result)

    def _count(self, tenant_id: str, result: IngestResult) -> None:
        self.parts.metrics.count_result(result)
        if self.parts.learner is not None and (ended := ended_visits(result.events)):
            self._ended.append((tenant_id, ended))

    def _tell_learner(self) -> None:
        """After a round's commit: the users whose visits it ended learn (see
        :mod:`server.learner`; a round rolled back tells nothing, its replay does)."""
        if self.parts.learner is not None:
            for tenant_id, users in self._ended:
                self.parts.learner.visits_ended(tenant_id, users)
        self._ended.clear()

    async def _maybe_timers(self) -> None:
        interval = self.parts.settings.timer_interval_s
        started = time.monotonic()
        if not interval or started - self._timers_at < interval:
            return
        self._timers_at = started
        # Asked every round, due or not: the owner rounds read the answer (caught_up).
        at = await self.caught_up_at()
        if at is not None:
            await self._fire_timers(at)

    async def caught_up_at(self) -> float | None:
        """A wall time up to which the partition has processed every message the stream
        held — the time of a check of the stream's last sequence that the partition has
        reached — or None while it is behind the last check or JetStream does not
        answer. A ping still in the stream may keep a visit open (as it would on a
        single node), so timers fire at that time, never ahead of the stream.

        Under load the newest check is usually a few messages ahead; the one before it
        has been reached by then, so timers fire one round late rather than never."""
        reached = self._mark
        if reached is not None and self.position < reached.seq:
            return None
        newer = await self._check_stream()
        if newer is None:
            return None
        self._mark, self._marked_at = newer, time.monotonic()
        if self.position >= newer.seq:
            return newer.at
        return reached.at if reached is not None else None

    async def _check_stream(self) -> StreamMark | None:
        """The partition's last stream sequence now; None (logged) when JetStream cannot
        answer (no stream leader yet)."""
        at = self.parts.clock()
        self._checked_at = time.monotonic()
        try:
            seq = await last_sequence(self._requests, partition_filter(self.partition))
        except (NatsError, TimeoutError) as exc:
            self._failures.failed("asking the stream", exc)
            return None
        self._failures.succeeded("asking the stream")
        return StreamMark(at, seq)

    async def _watch_consumer(self) -> None:
        """After ``stall_s`` without a message: a new consumer from the position when
        the stream holds more than that (or when the last one could not be created)."""
        stall_s = self.parts.settings.stall_s
        now = time.monotonic()
        if now - self._delivered_at < stall_s or now - self._checked_at < stall_s:
            return
        if self._sub is not None:
            mark = await self._check_stream()
            if mark is None or mark.seq <= self.position:
                return
            log.warning("partition %d: no message for %.1f s while the stream holds up "
                        "to %d (processed %d): a new consumer", self.partition,
                        now - self._delivered_at, mark.seq, self.position)
        self._checked_at = now
        try:
            await self._subscribe()
        except (NatsError, TimeoutError) as exc:
            self._failures.failed("creating a consumer", exc)
        else:
            self._failures.succeeded("creating a consumer")

    async def _fire_timers(self, at: float) -> None:
        assert self._store is not None
        store = self._store
        if not store.any_due(at):
            return  # no transaction for a round with nothing due (the usual round)
        await store.prepare(self.parts.cores, store.checkpoint.tenants)
        self._ended.clear()
        async with store.session():
            await fire_all_timers(store, self.parts.cores, lambda: at,
                                  on_result=self._count,
                                  on_error=self.parts.metrics.timer_errors.inc,
                                  failures=self._failures)
        self._tell_learner()

    async def fire_timers(self) -> None:
        """Fire the partition's due timers now, between two rounds (tests, benchmarks:
        the caller has waited until the partition is restored and processed its stream)."""
        async with self.lock:
            if self._restored:
                await self._fire_timers(self.parts.clock())

    async def _maybe_checkpoint(self) -> None:
        if time.monotonic() < self._checkpoint_due:
            return
        try:
            await self._checkpoint()
        except (NatsError, TimeoutError) as exc:
            # Nothing is lost: the next one (an interval later) covers this one's part.
            self._failures.failed("checkpointing", exc)
        else:
            self._failures.succeeded("checkpointing")

    async def _checkpoint(self) -> None:
        assert self._store is not None
        cp = self._store.checkpoint
        cp.seq = self.position
        self._checkpoint_due = time.monotonic() + self.parts.settings.checkpoint_interval_s
        self.checkpoint_at = await checkpoints.save(self.parts.cluster.checkpoints, cp,
                                                    owner=self.worker_id)
        self.checkpoint_seq = cp.seq
        self.parts.partition_metrics.checkpointed(self.partition, self.checkpoint_at)

    def caught_up(self) -> bool:
        """Whether partition-wide rounds (behaviour triggers, scheduled slots) may run:
        the lease allows processing, the partition is restored, and it has processed up
        to the stream's last sequence as of a check answered within ``lease_s / 2`` (a
        timer round asks every ``timer_interval_s``: :meth:`caught_up_at`)."""
        mark = self._mark
        return (self._valid() and not self._stopping and self._restored
                and mark is not None and self.position >= mark.seq
                and time.monotonic() - self._marked_at <= self.parts.settings.lease_s / 2)

    @property
    def ended(self) -> bool:
        """Whether the task is over (stopped, or cancelled)."""
        return self._task is not None and self._task.done()

    def progress(self) -> dict[str, float]:
        """The fields the lease carries for ``geopush cluster status``."""
        return {"position": self.position, "pending": self.pending,
                "checkpoint_seq": self.checkpoint_seq, "checkpoint_at": self.checkpoint_at}


@dataclass
class Worker:
    """A worker process's partitions and its lease loop (see the module docstring)."""

    parts: WorkerParts
    worker_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    runners: dict[int, PartitionRunner] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.leases = LeaseTable(self.parts.cluster.leases, self.worker_id,
                                 timeout_s=self.parts.settings.lease_s)
        self._failures = FailureLog(log, f"worker {self.worker_id}")

    async def run(self) -> None:
        """Keep the fair share of partitions until cancelled (then :meth:`stop`)."""
        interval = self.parts.settings.lease_s / 3
        while True:
            try:
                await self.round()
                self._failures.succeeded("lease round")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._failures.failed("lease round", exc)
            await asyncio.sleep(interval)

    async def round(self) -> None:
        """One heartbeat, renewal and rebalancing round."""
        await self.leases.heartbeat()
        await self._renew()
        partitions = self.parts.cluster.partitions
        leases, workers = await read_all(self.parts.cluster.leases, partitions)
        share = math.ceil(partitions / max(1, len(set(workers) | {self.worker_id})))
        held = sorted(self.runners)
        for partition in held[share:]:
            await self.hand_over(partition)
        wanted = share - len(self.runners)
        if wanted <= 0:
            return
        now = time.time()
        start = zlib.crc32(self.worker_id.encode()) % partitions
        for i in range(partitions):
            if wanted <= 0:
                break
            partition = (start + i) % partitions
            if partition in self.runners or not leases[partition].free(now):
                continue
            if await self.leases.acquire(partition):
                self._take(partition)
                wanted -= 1

    async def _renew(self) -> None:
        for partition, runner in list(self.runners.items()):
            try:
                renewed = await self.leases.renew(partition, **runner.progress())
            except Exception as exc:  # NATS unreachable: keep it while still valid
                self._failures.failed(f"renewing partition {partition}", exc)
                renewed = self.leases.valid(partition)
            if not renewed:
                log.warning("partition %d: lease lost; stopping without a checkpoint",
                            partition)
                self.leases.held.pop(partition, None)
                runner.abandon()
                del self.runners[partition]
            elif runner.ended:
                # Ended by itself (cancelled): free the partition for another worker.
                del self.runners[partition]
                await self.leases.release(partition)

    def _take(self, partition: int) -> None:
        runner = PartitionRunner(self.parts, partition, self.worker_id,
                                 lambda: self.leases.valid(partition))
        self.runners[partition] = runner
        runner.start()
        log.info("worker %s took partition %d", self.worker_id, partition)

    async def hand_over(self, partition: int) -> None:
        """Drain, checkpoint, release: the next owner replays nothing twice."""
        runner = self.runners.pop(partition)
        await runner.stop(checkpoint=True)
        await self.leases.release(partition, **runner.progress())
        log.info("worker %s handed partition %d over at sequence %d", self.worker_id,
                 partition, runner.position)

    async def stop(self) -> None:
        """Graceful shutdown: hand every partition over, then leave."""
        for partition in sorted(self.runners):
            with contextlib.suppress(Exception):
                await self.hand_over(partition)
        with contextlib.suppress(Exception):
            await self.leases.leave()

    async def fire_timers(self) -> None:
        """Fire every owned partition's due timers now (tests, benchmarks)."""
        for runner in list(self.runners.values()):
            await runner.fire_timers()

    def positions(self) -> dict[int, int]:
        return {p: r.position for p, r in self.runners.items()}
