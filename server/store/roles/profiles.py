"""The profiles role: what is known about a user — profile, contacts, the history the
pipeline recorded — and erasing all of it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from server.store.base import DecisionPageKey, DecisionRecord, EventRecord, SlotCursor
from triggers.decisions import Profile
from triggers.pings import PingBatch


class ProfileStore(Protocol):
    """Users' profiles and contacts, their recorded events and decisions, erasure."""

    async def put_profile(self, tenant_id: str, profile: Profile) -> bool:
        """Create or replace a profile; True when created."""
        ...

    async def patch_profile(
        self, tenant_id: str, user_id: str, patch: Mapping[str, Any]
    ) -> Profile:
        """Apply an RFC 7396 JSON merge patch to the stored profile (objects merge,
        ``null`` deletes, anything else replaces), validate, store, return it. Raises
        ``NotFoundError`` when the user has no profile and ``pydantic.ValidationError`` when
        the result is not a valid profile (nothing is stored then)."""
        ...

    async def get_profile(self, tenant_id: str, user_id: str) -> Profile | None: ...

    async def get_profiles(self, tenant_id: str, user_ids: Sequence[str]) -> dict[str, Profile]:
        """The profiles of ``user_ids`` that exist."""
        ...

    async def remove_contact(
        self, tenant_id: str, user_id: str, channel: str, address: str
    ) -> bool:
        """Remove a dead address from the user's contacts (a device token for ``fcm`` /
        ``apns``, the ``email`` or the ``phone`` for ``sms``); True when it was there."""
        ...

    async def list_decisions(
        self, tenant_id: str, user_id: str, *, limit: int = 50, before: float | None = None,
        after_key: DecisionPageKey | None = None,
    ) -> list[DecisionRecord]:
        """The user's decisions, newest first (by ``decided_at``, then event time, then
        key in code point order); ``before``: only those decided earlier; ``after_key``:
        only those after that position of this order (the last row of a page, see
        :func:`~server.store.base.decision_page_key`), so pages neither skip nor repeat
        rows that share a time."""
        ...

    async def list_events(
        self, tenant_id: str, user_id: str, *, limit: int = 100
    ) -> list[EventRecord]:
        """The user's presence events, oldest first (by ``at``), the last ``limit``."""
        ...

    async def venue_events(
        self, tenant_id: str, venue_id: str, *, since: float, limit: int = 1000
    ) -> list[EventRecord]:
        """The presence events at one venue with ``at >= since``, oldest first (by
        ``at``, then recording order), the last ``limit`` of them: the console's live
        view of a venue."""
        ...

    async def recorded_pings(
        self, tenant_id: str, *, since: float, limit: int
    ) -> tuple[PingBatch, NDArray[np.float64]]:
        """The tenant's retained pings with ``ts >= since`` in ``ts`` order (then user),
        the last ``limit`` of them, and when each was received: what a back-test
        replays."""
        ...

    async def erase_user(self, tenant_id: str, user_id: str) -> dict[str, int]:
        """Delete everything about the user: profile, pings, presence, events,
        decisions, ledger entries, feedback streak, deliveries; and revoke their stream
        tokens (``revoke_stream_tokens``, not counted). Waits for the user's batch lock,
        so no batch in flight writes the user back. Returns rows deleted per kind (all
        zeros for an unknown user)."""
        ...

    # -- scheduled fan-out: the audience by zone, in pages, and each slot's progress -------

    async def profile_zones(self, tenant_id: str) -> list[str | None]:
        """The distinct ``attributes.timezone`` values of the tenant's profiles, ``None``
        for profiles without one (sorted, ``None`` first)."""
        ...

    async def profiles_page(
        self, tenant_id: str, *, timezone: str | None, after: str | None, limit: int
    ) -> list[Profile]:
        """Keyset page of the profiles whose ``attributes.timezone`` is ``timezone``
        (``None``: profiles without one): user ids after ``after`` in code point order,
        the first ``limit``. Memory per page is bounded by ``limit``, whatever the
        audience size."""
        ...

    async def slot_cursors(self, tenant_id: str, since: float) -> dict[str, SlotCursor]:
        """The slot cursors of slots at or after ``since``, by cursor id."""
        ...

    async def save_slot_cursor(self, tenant_id: str, cursor: SlotCursor) -> None:
        """Record a slot's progress; never moves a cursor back (a slower node that
        settled an earlier page does not undo a faster one's), and ``done`` stays done."""
        ...
