"""The behaviour role: behaviour events in (idempotent by key), each user's profile
features folded in the same transaction, the tenant's tag rules, retention."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from server.store.roles.tenants import TenantDirectory
from triggers.behaviour.events import BehaviourEvent
from triggers.behaviour.features import UserFeatures
from triggers.behaviour.rules import TagRules
from triggers.behaviour.triggers import PendingTrigger
from triggers.decisions.models import Campaign


@dataclass(frozen=True, slots=True)
class BehaviourRecord:
    """A behaviour event as stored: its idempotency key (``BehaviourEvent.key()``,
    UNIQUE per tenant) and when the service received it."""

    event_key: str
    event: BehaviourEvent
    received_at: float

    @classmethod
    def of(cls, event: BehaviourEvent, received_at: float) -> BehaviourRecord:
        return cls(event.key(), event, received_at)


class BehaviourStore(TenantDirectory, Protocol):
    """What ``POST /v1/events``, the user view, ``geopush events import`` and the
    retention loop ask of a store."""

    async def ingest_behaviour(
        self, tenant_id: str, records: Sequence[BehaviourRecord], *,
        campaigns: Sequence[Campaign] = (), now: float | None = None,
    ) -> list[BehaviourRecord]:
        """In ONE transaction holding the users' batch locks: store the records whose key
        is new (a key stored already, or given earlier in the call, is skipped), fold
        the new ones into their users' features
        (:func:`triggers.behaviour.features.fold`), store the pending triggers they start
        among ``campaigns`` (:func:`triggers.behaviour.triggers.triggered`; keyed, so
        once), and cancel the users' pending triggers they follow up
        (:func:`~triggers.behaviour.triggers.cancellations`), each with its decision
        (:func:`~triggers.behaviour.triggers.cancelled_decision`, decided at ``now``)
        keyed as the trigger's: a trigger whose decision exists already (it fired) is
        left alone. With no ``campaigns`` no trigger is started or cancelled (one of a
        campaign paused since decides nothing anyway). Returns the new records in the
        order given. Raises ``NotFoundError`` for an unknown tenant."""
        ...

    async def due_triggers(self, tenant_id: str, now: float,
                           limit: int) -> list[PendingTrigger]:
        """Pending triggers due at or before ``now``, earliest first (a hint: reread them
        under the users' batch lock with :meth:`open_triggers`)."""
        ...

    async def open_triggers(self, tenant_id: str,
                            keys: Sequence[str]) -> list[PendingTrigger]:
        """Those of ``keys`` still pending."""
        ...

    async def settle_triggers(self, tenant_id: str, keys: Sequence[str]) -> int:
        """Mark those of ``keys`` still pending as fired; how many."""
        ...

    async def list_behaviour(
        self, tenant_id: str, user_id: str, *, since: float | None = None, limit: int = 100
    ) -> list[BehaviourRecord]:
        """The user's stored events with ``ts >= since``, oldest first (by ``ts``, then
        key), the last ``limit`` of them."""
        ...

    async def get_features(self, tenant_id: str, user_id: str) -> UserFeatures | None:
        """The user's behaviour features, or ``None`` before their first event."""
        ...

    async def get_features_of(self, tenant_id: str,
                              user_ids: Sequence[str]) -> dict[str, UserFeatures]:
        """The features of those of ``user_ids`` that have some (one read)."""
        ...

    async def get_tag_rules(self, tenant_id: str) -> TagRules | None:
        """The tenant's tag rules, or ``None`` when it put none (the defaults apply)."""
        ...

    async def put_tag_rules(self, tenant_id: str, rules: TagRules) -> None:
        """Replace the tenant's tag rules. Raises ``NotFoundError`` for an unknown tenant."""
        ...

    async def prune_behaviour(self, tenant_id: str, *, before: float, limit: int) -> int:
        """Delete at most ``limit`` of the tenant's raw behaviour events received before
        ``before``; returns how many. Features stay (they bound themselves)."""
        ...
