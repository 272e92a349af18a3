"""The outbox dispatcher: claims due deliveries, sends them through the channels, and
records what happened (see :mod:`server.outbox.dispatcher`)."""

from __future__ import annotations

from typing import Protocol

from server.store.roles import CatalogStore, OutboxStore, ProfileStore


class DispatchStore(OutboxStore, CatalogStore, ProfileStore, Protocol):
    """The storage roles a dispatcher uses: the outbox; the catalogue for campaigns,
    policy, venues and channel settings; profiles for contacts."""
