"""The outbox as the app runs it: the channel registry and N dispatcher tasks."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable

from server.channels.inapp import StreamFanout, StreamHub
from server.outbox import DispatchStore
from server.outbox.backoff import Backoff
from server.outbox.channels import ChannelRegistry
from server.outbox.dispatcher import Dispatcher
from server.outbox.metrics import OutboxMetrics
from server.settings import Settings


class Outbox:
    """Dispatchers sharing one channel registry. :meth:`start` runs them as tasks;
    :meth:`aclose` cancels them and closes the channels. Runs in the event loop."""

    def __init__(
        self,
        store: DispatchStore,
        settings: Settings,
        *,
        hub: StreamHub,
        metrics: OutboxMetrics,
        clock: Callable[[], float],
        registry: ChannelRegistry | None = None,
        fanout: StreamFanout | None = None,
    ) -> None:
        self.registry = registry or ChannelRegistry(hub, observer=metrics.observe_send,
                                                    clock=clock, fanout=fanout,
                                                    egress=settings.egress())
        backoff = Backoff(base_s=settings.retry_base_s,
                          max_s=max(settings.retry_max_s, settings.retry_base_s),
                          max_attempts=settings.retry_max_attempts)
        seed = settings.retry_jitter_seed
        self.dispatchers = [
            Dispatcher(store, self.registry, clock=clock, metrics=metrics, backoff=backoff,
                       rng=random.Random(None if seed is None else seed + i),
                       lease_s=settings.outbox_lease_s, batch=settings.outbox_batch,
                       concurrency=settings.outbox_concurrency)
            for i in range(settings.outbox_workers)
        ]
        self._interval_s = settings.outbox_interval_s
        self._tasks: list[asyncio.Task[None]] = []

    def wake(self) -> None:
        """Deliveries were just created: every idle dispatcher looks now."""
        for dispatcher in self.dispatchers:
            dispatcher.wake()

    def start(self) -> None:
        self._tasks = [asyncio.create_task(d.run(interval_s=self._interval_s), name=d.name)
                       for d in self.dispatchers]

    async def stop(self) -> None:
        """Cancel the dispatchers (a claim in flight comes back after its lease)."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def aclose(self) -> None:
        await self.stop()
        await self.registry.aclose()
