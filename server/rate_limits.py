"""API keys' rate limits shared by every node: token buckets in PostgreSQL, spent from leases.

With N ``geopush serve`` nodes behind a load balancer, a bucket per process would let a
key make N times its rate (an SDK key ships inside apps: assume it leaks and is abused).
The bucket of each key lives in ``rate_buckets`` (migration 0006) instead, and a node
never asks the database per request:

- **leases**: when a node has no token of a key's in hand, one call
  (``geopush_take_rate_tokens``) refills the shared bucket to the database's clock and
  takes up to :func:`lease_size` tokens (a tenth of a second of the key's rate, at most
  a tenth of its burst, at least one); the request spends one, the rest wait in this
  node's memory for the key's next requests. So one round trip per lease: 1 in 5
  requests at the default SDK limits (50/s, burst 200), every request at 10/s or below.
- **never over the rate**: a token is granted once, by the row lock of the key's bucket,
  whichever node asks. A lease unspent after :data:`LEASE_TTL_S` is dropped, not returned:
  a key that stopped may lose a few tokens, but tokens taken long ago cannot add to a
  later burst.
- **over the rate**: no token left in the bucket is a 429 ``rate_limited`` with
  ``Retry-After`` from the bucket's own deficit, as with the local buckets.
- **database trouble**: a lease that fails or takes longer than :data:`QUERY_TIMEOUT_S`
  hands the decision to this node's own buckets (:class:`~server.auth.RateLimiter`) for
  :data:`RETRY_AFTER_S`, counted once as ``failed``: limits stay on, per node, rather
  than failing requests or waiting on the database for each.
- **cleanup**: :meth:`SharedRateLimiter.prune_loop` deletes buckets idle for an hour
  (full again long before: the same as no row).

Concurrent requests of one key on one node share a lease: they queue on a lock per key
while one of them asks, so a burst of requests does not become a burst of round trips.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from server.auth import Principal, RateLimiter, Role, rate_limited
from server.outages import FailureLog
from server.settings import RateLimit

log = logging.getLogger("geopush.rate_limits")

LEASE_S = 0.1
"""A lease is this much of the key's rate (in seconds of it)."""
LEASE_TTL_S = 1.0
"""An unspent lease is dropped after this."""
QUERY_TIMEOUT_S = 2.0
"""A lease not granted by then: this node's own bucket decides the request."""
RETRY_AFTER_S = 5.0
"""After a failed lease, this node's own buckets decide for this long before the shared
ones are asked again: a database that is down costs one failed call per 5 s, not one per
request (nor a log line per request)."""
PRUNE_EVERY_S = 600.0
IDLE_FOR_S = 3600.0
"""Buckets untouched this long are deleted (any bucket is full after burst / rate, 4-5 s
at the default limits)."""
_LEASE = (f"leasing tokens (each node limits with buckets of its own meanwhile, asking "
          f"again every {RETRY_AFTER_S:g} s)")


class RateBucketStore(Protocol):
    """The statements the shared limiter runs (``PostgresStore`` has them)."""

    async def take_rate_tokens(
        self, key_id: str, *, per_s: float, burst: float, want: int
    ) -> tuple[int, float]: ...

    async def prune_rate_buckets(self, *, idle_for_s: float) -> int: ...


def lease_size(limit: RateLimit) -> int:
    """Tokens a node takes from the shared bucket at a time: :data:`LEASE_S` of the rate,
    but at most a tenth of the burst (one node must not hold what the others need), and at
    least one."""
    return max(1, min(limit.burst // 10, math.ceil(limit.per_s * LEASE_S)))


@dataclass(slots=True)
class _Lease:
    tokens: int
    until: float
    """Monotonic time the lease is dropped at."""


class SharedRateLimiter:
    """The :class:`~server.auth.Limiter` of a PostgreSQL deployment; see the module doc.

    ``observe(outcome)`` counts each call to the database: ``leased``, ``denied`` (the
    bucket was empty: 429) or ``failed`` (fell back to ``fallback``).
    """

    def __init__(
        self,
        store: RateBucketStore,
        limits: Callable[[Role], RateLimit],
        *,
        fallback: RateLimiter,
        monotonic: Callable[[], float] = time.monotonic,
        observe: Callable[[str], None] | None = None,
    ) -> None:
        self._store = store
        self._limits = limits
        self._fallback = fallback
        self._now = monotonic
        self._observe = observe or (lambda _outcome: None)
        self._leases: dict[str, _Lease] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._down_until = -math.inf
        self._failures = FailureLog(log, "rate limits", clock=monotonic)
        """Monotonic time until which this node's own buckets decide, after a failure."""

    async def acquire(self, principal: Principal) -> None:
        """Spend a token of the key's lease, leasing more when there is none; raises 429
        ``rate_limited`` when the shared bucket is empty."""
        key_id = principal.key_id
        if self._spend(key_id):
            return
        if self._now() < self._down_until:
            self._fallback.check(principal)
            return
        lock = self._locks.get(key_id)
        if lock is None:
            lock = self._locks[key_id] = asyncio.Lock()
        async with lock:
            if self._spend(key_id):  # leased by the request this one queued behind
                return
            limit = self._limits(principal.role)
            try:
                async with asyncio.timeout(QUERY_TIMEOUT_S):
                    granted, left = await self._store.take_rate_tokens(
                        key_id, per_s=limit.per_s, burst=float(limit.burst),
                        want=lease_size(limit))
            except Exception as exc:
                self._failures.failed(_LEASE, exc)
                self._observe("failed")
                self._down_until = self._now() + RETRY_AFTER_S
                self._fallback.check(principal)
                return
            self._failures.succeeded(_LEASE)
            if granted == 0:
                self._observe("denied")
                raise rate_limited(max(1, math.ceil((1.0 - left) / limit.per_s)))
            self._observe("leased")
            if granted > 1:
                self._leases[key_id] = _Lease(granted - 1, self._now() + LEASE_TTL_S)

    def _spend(self, key_id: str) -> bool:
        lease = self._leases.get(key_id)
        if lease is None:
            return False
        if self._now() >= lease.until:
            del self._leases[key_id]
            return False
        lease.tokens -= 1
        if lease.tokens == 0:
            del self._leases[key_id]
        return True

    async def prune_loop(self) -> None:
        """Every :data:`PRUNE_EVERY_S`, delete the buckets idle for :data:`IDLE_FOR_S`;
        a failure is logged and retried next round."""
        while True:
            await asyncio.sleep(PRUNE_EVERY_S)
            try:
                await self._store.prune_rate_buckets(idle_for_s=IDLE_FOR_S)
            except Exception as exc:
                self._failures.failed("pruning idle buckets", exc)
            else:
                self._failures.succeeded("pruning idle buckets")
