"""Stable ids derived from a delivery's idempotency key, identical on every retry."""

from __future__ import annotations

import hashlib
import uuid

_NAMESPACE = uuid.UUID("6f1d2c4e-5b0a-4e8e-9f3a-2d7c9b1e0a55")
"""Fixed forever: changing it changes every derived id."""


def collapse_id(key: str, limit: int = 64) -> str:
    """``key`` itself when it fits ``limit`` UTF-8 bytes, else a hex digest of it.

    Used as the push services' collapse key: a retried send that arrives twice then
    replaces the first notification on the device instead of showing a duplicate.
    """
    if len(key.encode()) <= limit:
        return key
    return hashlib.sha256(key.encode()).hexdigest()[:limit]


def stable_uuid(key: str) -> str:
    """A UUID (version 5) for ``key``: APNs wants ``apns-id`` in that form."""
    return str(uuid.uuid5(_NAMESPACE, key))
