"""The storage roles the outbox uses, named once for the dispatcher and its service."""

from __future__ import annotations

from typing import Protocol

from server.store.roles import CatalogStore, OutboxStore, ProfileStore


class DispatchStore(OutboxStore, CatalogStore, ProfileStore, Protocol):
    """The storage roles a dispatcher uses: the outbox; the catalogue for campaigns,
    policy, venues and channel settings; profiles for contacts."""
