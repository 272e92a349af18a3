"""Who has the app open, across nodes: this node's live streams as rows in PostgreSQL.

The dispatcher picks the in-app inbox over a push while the user's app is open
(:func:`~server.channels.select.select_channel`), but a node's :class:`StreamHub` only
knows the sockets of its own process. :class:`StreamPresence` keeps this node's share
of the ``stream_presence`` table (migration 0005) in step with its hub, and answers for
all nodes:

- **writes, off the request path**: the hub's watcher (:meth:`StreamHub.watch`) only
  marks a user dirty; a background task writes the dirty users' current state every
  ``flush_s`` (a row when their first stream here opened, none when the last closed).
  Opening or closing a stream thus never waits for, nor fails with, the database.
- **heartbeat**: every ``refresh_s`` the task extends this node's rows to ``3 ×
  refresh_s`` from now (the database's clock, the same clock readers compare with), so
  a node that dies without a word stops counting within three refreshes. When the row
  count differs from the hub's (another node pruned ours during an outage, a write was
  lost), the task rewrites this node's rows whole from the hub. The heartbeat also
  deletes any node's rows expired for longer than the TTL: dead nodes leave nothing.
- **failures**: a write that fails is logged and retried, by a full rewrite from the
  hub, after a backoff (``retry_min_s`` doubling up to ``refresh_s``); readers meanwhile
  see the last rows written, which expire on their own.
- **shutdown**: :meth:`StreamPresence.aclose` deletes this node's rows.
- **reads**: :meth:`StreamPresence.online`, one query for a batch of users; it raises
  on failure (:class:`~server.channels.pg_fanout.PostgresFanout` falls back to its hub).

Runs in the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Collection, Sequence
from typing import Protocol

from server.channels.inapp import StreamHub, UserKey
from server.outages import FailureLog

log = logging.getLogger("geopush.stream")
_WRITE = "writing who is online here (other nodes may not see it)"

DEFAULT_REFRESH_S = 15.0
TTL_REFRESHES = 3
"""A row lives this many refreshes: one late heartbeat (a slow database, a long GC) is
no reason to send a push to someone whose app is open."""
FLUSH_S = 0.1
"""How long the writer gathers stream changes before writing them: a burst of opens and
closes (a reconnect storm after a deploy) becomes one statement, and a user seen online
by another node's dispatcher lags their socket by about this much."""
QUERY_TIMEOUT_S = 5.0
"""A presence statement gives up after this (it is retried; readers fall back)."""


class PresenceStore(Protocol):
    """The statements :class:`StreamPresence` runs (``PostgresStore`` has them)."""

    async def write_stream_presence(
        self, node_id: str, online: Sequence[UserKey], offline: Sequence[UserKey], *,
        ttl_s: float,
    ) -> None: ...

    async def sync_stream_presence(
        self, node_id: str, online: Sequence[UserKey], *, ttl_s: float
    ) -> None: ...

    async def refresh_stream_presence(self, node_id: str, *, ttl_s: float) -> int: ...

    async def prune_stream_presence(self, *, expired_for_s: float) -> int: ...

    async def clear_stream_presence(self, node_id: str) -> None: ...

    async def stream_presence(self, tenant_id: str, user_ids: Sequence[str]) -> set[str]: ...


class StreamPresence:
    """This node's rows of ``stream_presence``, kept in step with ``hub`` (see the module
    docstring). ``node_id``: the fan-out's, so one node is one id in both."""

    def __init__(
        self,
        hub: StreamHub,
        store: PresenceStore,
        *,
        node_id: str,
        refresh_s: float = DEFAULT_REFRESH_S,
        flush_s: float = FLUSH_S,
        retry_min_s: float = 0.5,
        timeout_s: float = QUERY_TIMEOUT_S,
        observer: Callable[[str], None] | None = None,
    ) -> None:
        self.hub = hub
        self.node_id = node_id
        self.refresh_s = refresh_s
        self.ttl_s = refresh_s * TTL_REFRESHES
        self._store = store
        self._flush_s = flush_s
        self._retry_min_s = retry_min_s
        self._timeout_s = timeout_s
        self._observe = observer or (lambda _event: None)
        self._dirty: set[UserKey] = set()
        self._resync = True  # the first round writes the hub whole (usually: nobody)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._unwatch: Callable[[], None] | None = None
        self._failures = FailureLog(log, "stream presence")

    def start(self) -> None:
        """Watch the hub and start the writer task."""
        if self._task is not None:
            return
        self._unwatch = self.hub.watch(self._changed)
        self._task = asyncio.create_task(self._write_forever(),
                                         name="geopush-stream-presence")

    async def aclose(self) -> None:
        """Stop writing and delete this node's rows (best effort: if the database is
        away they expire on their own)."""
        if self._unwatch is not None:
            self._unwatch()
            self._unwatch = None
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        try:
            async with asyncio.timeout(self._timeout_s):
                await self._store.clear_stream_presence(self.node_id)
        except Exception as exc:
            log.warning("stream presence: cannot delete this node's rows at shutdown "
                        "(they expire within %.0f s): %s", self.ttl_s, exc)

    async def online(self, tenant_id: str, user_ids: Collection[str]) -> set[str]:
        """The users of ``user_ids`` with a live row on any node. Raises on failure."""
        if not user_ids:
            return set()
        async with asyncio.timeout(self._timeout_s):
            return await self._store.stream_presence(tenant_id, sorted(user_ids))

    def _changed(self, tenant_id: str, user_id: str, _online: bool) -> None:
        # The hub is the truth: the flush reads each dirty user's state from it then.
        self._dirty.add((tenant_id, user_id))
        self._wake.set()

    # -- the writer task -------------------------------------------------------------

    async def _write_forever(self) -> None:
        """Flush, heartbeat, retry; only cancellation ends it. (``asyncio.timeout``, not
        ``wait_for``: on 3.11 ``wait_for`` can swallow a cancellation that arrives as its
        awaitable finishes, and this loop would then never end.)"""
        loop = asyncio.get_running_loop()
        next_beat = loop.time() + self.refresh_s
        delay_s = self._retry_min_s
        while True:
            if not (self._dirty or self._resync):
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout_at(next_beat):
                        await self._wake.wait()
                self._wake.clear()
            if self._dirty:
                await asyncio.sleep(self._flush_s)  # gather the burst
            try:
                await self._flush()
                if loop.time() >= next_beat:
                    await self._heartbeat()
                    next_beat = loop.time() + self.refresh_s
            except Exception as exc:
                self._failures.failed(_WRITE, exc)
                self._observe("presence_write_failed")
                self._resync = True
                await asyncio.sleep(delay_s)
                delay_s = min(delay_s * 2, self.refresh_s)
            else:
                self._failures.succeeded(_WRITE)
                delay_s = self._retry_min_s

    async def _flush(self) -> None:
        """Write the dirty users' state (everyone's after a failure)."""
        dirty, self._dirty = self._dirty, set()
        if self._resync:
            users = self.hub.online_users()
            async with asyncio.timeout(self._timeout_s):
                await self._store.sync_stream_presence(self.node_id, users, ttl_s=self.ttl_s)
            self._resync = False
            return
        if not dirty:
            return
        online = sorted(k for k in dirty if self.hub.is_online(*k))
        offline = sorted(k for k in dirty if not self.hub.is_online(*k))
        try:
            async with asyncio.timeout(self._timeout_s):
                await self._store.write_stream_presence(self.node_id, online, offline,
                                                        ttl_s=self.ttl_s)
        except BaseException:
            self._dirty |= dirty  # cancelled mid-write, or failed: still to do
            raise

    async def _heartbeat(self) -> None:
        async with asyncio.timeout(self._timeout_s):
            rows = await self._store.refresh_stream_presence(self.node_id, ttl_s=self.ttl_s)
        if rows != self.hub.online_count():
            log.info("stream presence: %d rows for %d users online here; rewriting them",
                     rows, self.hub.online_count())
            self._resync = True
            await self._flush()
        async with asyncio.timeout(self._timeout_s):
            await self._store.prune_stream_presence(expired_for_s=self.ttl_s)
