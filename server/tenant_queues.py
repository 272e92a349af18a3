"""The skeleton both group commits share (ping batches in :mod:`server.group_commit`,
behaviour events in :mod:`server.behaviour_group_commit`): per tenant, a queue of
waiting requests drained by one task at a time, which takes a group off the queue
(``_take``) and runs it (``_run``) until the queue is empty. Each request carries the
future its caller awaits; :func:`settle` answers it once."""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar


class Waiting(Protocol):
    """A request in a queue: its caller awaits ``done``."""

    @property
    def done(self) -> asyncio.Future[Any]: ...


R = TypeVar("R", bound=Waiting)


@dataclass(slots=True)
class _Tenant(Generic[R]):
    waiting: deque[R] = field(default_factory=deque)
    worker: asyncio.Task[None] | None = None


class TenantQueues(ABC, Generic[R]):
    """Per-tenant queues, each drained by one task at a time (see the module docstring)."""

    def __init__(self, task_name: str) -> None:
        self._task_name = task_name
        self._tenants: dict[str, _Tenant[R]] = {}

    def _submit(self, tenant_id: str, request: R) -> None:
        """Queue ``request``; start the tenant's drain unless one is running."""
        tenant = self._tenants.setdefault(tenant_id, _Tenant())
        tenant.waiting.append(request)
        if tenant.worker is None or tenant.worker.done():
            tenant.worker = asyncio.create_task(self._drain(tenant_id, tenant),
                                                name=f"{self._task_name}:{tenant_id}")

    async def close(self) -> None:
        """Wait for the groups in flight."""
        workers = [t.worker for t in self._tenants.values() if t.worker is not None]
        await asyncio.gather(*workers, return_exceptions=True)

    async def _drain(self, tenant_id: str, tenant: _Tenant[R]) -> None:
        while tenant.waiting:
            group = self._take(tenant.waiting)
            if group:
                await self._run(tenant_id, group)

    @abstractmethod
    def _take(self, waiting: deque[R]) -> list[R]:
        """The next group, taken off ``waiting`` (requests left behind stay in order)."""

    @abstractmethod
    async def _run(self, tenant_id: str, group: list[R]) -> None:
        """Process ``group`` and settle every request's future."""


def settle(done: asyncio.Future[Any], outcome: object) -> None:
    """Answer a request's future with ``outcome`` (an exception is raised to its
    caller), unless it is answered or cancelled already."""
    if done.done():
        return
    if isinstance(outcome, BaseException):
        done.set_exception(outcome)
    else:
        done.set_result(outcome)
