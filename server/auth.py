"""API keys, roles and per-key rate limits.

A key is a random secret shown once; the store keeps only its SHA-256 (a key has 256
bits of entropy, so a fast hash is enough: there is nothing to brute-force). A request
authenticates with ``Authorization: Bearer <key>``; the OwnTracks route also accepts HTTP
Basic with the key as password, the OsmAnd route ``?key=``.

Roles (every key belongs to one tenant and sees nothing of another):

========== ===================================================================
``admin``   everything of its tenant: keys, policy, user erasure, and all below
``manager`` venues, campaigns (and their stats), user profiles (upsert, patch),
            decision logs, reading the policy
``sdk``     posting locations only: ``/v1/pings``, ``/v1/owntracks``, ``/v1/osmand``
========== ===================================================================

A manager key cannot post pings, and an SDK key (shipped inside apps, so assume it
leaks) can do nothing but post pings: least privilege both ways.

Rate limits are token buckets per key. With the PostgreSQL store the buckets are shared
by every node (:mod:`server.rate_limits`: a node leases a few tokens at a time), so a key
gets its rate across the cluster; with the embedded store, or when the database cannot
be asked, they are this process's own (:class:`RateLimiter`).
"""

from __future__ import annotations

import base64
import binascii
import math
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from aiohttp import web

from server.errors import ApiError
from server.settings import RateLimit
from server.store.base import Role, hash_key

__all__ = [
    "DEFAULT_TENANT", "Limiter", "Principal", "RateLimiter", "Role", "basic_credentials",
    "bearer_key", "forbidden", "generate_key", "hash_key", "new_key_id", "rate_limited",
    "unauthorized",
]

KEY_PREFIX = "gpk_"
DEFAULT_TENANT = "default"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the key's id (never the key), its tenant and role."""

    key_id: str
    tenant_id: str
    role: Role


def generate_key() -> str:
    """A new secret key: ``gpk_`` and 43 URL-safe characters (256 random bits)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def new_key_id() -> str:
    """A public id for a key (safe in logs and listings; says nothing of the secret)."""
    return "key_" + secrets.token_hex(8)


def bearer_key(request: web.Request) -> str | None:
    """The key of ``Authorization: Bearer <key>``, if that is the scheme used."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def basic_credentials(request: web.Request) -> tuple[str, str] | None:
    """``(user, password)`` of ``Authorization: Basic ...``, if that is the scheme used."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value.strip():
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


def unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, field="Authorization",
                    headers={"WWW-Authenticate": 'Bearer realm="geopush"'})


def forbidden(role: Role, allowed: frozenset[Role]) -> ApiError:
    need = " or ".join(sorted(r.value for r in allowed))
    return ApiError(403, "forbidden", f"a {role.value} key cannot do this (needs {need})")


class Limiter(Protocol):
    """Takes one request's token for a key, or raises 429 ``rate_limited``."""

    async def acquire(self, principal: Principal) -> None: ...


def rate_limited(wait_s: int) -> ApiError:
    """The 429 of a key past its rate, telling it to retry in ``wait_s`` seconds."""
    return ApiError(429, "rate_limited", f"too many requests for this key; retry in {wait_s} s",
                    headers={"Retry-After": str(wait_s)})


class RateLimiter:
    """Token buckets per key id, in this process (see the module doc on nodes).

    ``monotonic`` is the time source (seconds); tests pass a fake one. Buckets exist
    only for authenticated keys, so their number is bounded by the keys in use.
    """

    def __init__(
        self, limits: Callable[[Role], RateLimit],
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limits = limits
        self._now = monotonic
        self._buckets: dict[str, tuple[float, float]] = {}

    async def acquire(self, principal: Principal) -> None:
        self.check(principal)

    def check(self, principal: Principal) -> None:
        """Take one token for the key, or raise 429 ``rate_limited`` with Retry-After."""
        limit = self._limits(principal.role)
        now = self._now()
        tokens, last = self._buckets.get(principal.key_id, (float(limit.burst), now))
        tokens = min(float(limit.burst), tokens + max(0.0, now - last) * limit.per_s)
        if tokens < 1.0:
            self._buckets[principal.key_id] = (tokens, now)
            raise rate_limited(max(1, math.ceil((1.0 - tokens) / limit.per_s)))
        self._buckets[principal.key_id] = (tokens - 1.0, now)
