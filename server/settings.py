"""Service configuration: read once (by the CLI), validated, frozen, passed down.

Every key comes from the environment with the ``GEOPUSH_`` prefix (``GEOPUSH_PORT``),
except the database URL, which is also read from the conventional ``DATABASE_URL``.
Command-line flags override the environment: the CLI passes them as keyword arguments
to :func:`load_settings`. Nothing else in the service reads ``os.environ``.

A bad value raises :class:`SettingsError`, whose message names the environment key
(``GEOPUSH_PORT: Input should be a valid integer``), never a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import AliasChoices, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from server.egress import DEFAULT_ALLOWED, EgressPolicy
from triggers.decisions import RenderLimits

ENV_PREFIX = "GEOPUSH_"


class LogFormat(StrEnum):
    JSON = "json"
    """One JSON object per line (production: log shippers parse it)."""
    TEXT = "text"
    """``time level logger message`` for a person at a terminal."""


@dataclass(frozen=True, slots=True)
class RateLimit:
    """A token bucket: ``burst`` requests at once, refilled at ``per_s`` per second."""

    per_s: float
    burst: int


class SettingsError(ValueError):
    """Configuration that cannot be used; the message names the key."""


class Settings(BaseSettings):
    """What the server needs to start. Defaults are for a laptop: embedded store,
    port 8080 on localhost, JSON logs."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, frozen=True, extra="forbid", populate_by_name=True,
    )

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    """0 picks a free port (tests)."""
    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("database_url", "GEOPUSH_DATABASE_URL", "DATABASE_URL"),
    )
    """PostgreSQL DSN (``postgresql://...``); ``None`` selects the embedded store."""
    admin_key: str | None = Field(default=None, min_length=16)
    """Made an admin key of tenant ``default`` at start-up (``--admin-key``). At least
    16 characters: it is the only thing between the internet and every tenant setting."""

    # Per-key token buckets, by role: shared by every node with PostgreSQL (see
    # ``rate_limit_shared``), this process's own with the embedded store.
    rate_sdk_per_s: float = Field(default=50.0, gt=0)
    """SDKs post batches; 50 requests/s per key is far above any sane upload rhythm."""
    rate_sdk_burst: int = Field(default=200, ge=1)
    rate_manager_per_s: float = Field(default=10.0, gt=0)
    rate_manager_burst: int = Field(default=50, ge=1)
    rate_admin_per_s: float = Field(default=20.0, gt=0)
    rate_admin_burst: int = Field(default=100, ge=1)

    max_batch: int = Field(default=1000, ge=1, le=100_000)
    """Pings per ``POST /v1/pings``: 1000 keeps one batch's transaction short."""
    group_max_pings: int = Field(default=2000, ge=1, le=100_000)
    """Pings per group commit: concurrent ping requests of a tenant share one
    transaction up to this many pings (see :mod:`server.group_commit`); 1 turns
    grouping off (a request is never split, so a group always holds at least one)."""
    max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    """Largest request body of a venue import (after gzip decoding); larger gets 413
    ``payload_too_large``. 16 MiB fits a venue import of a few thousand
    polygons. No body of any route may be larger."""
    max_venue_body_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)
    """Largest body of ``PUT /v1/venues/{id}``: one venue at the vertex limit is under
    1 MB of GeoJSON, so the 15 MB outline of the attacker's test is refused unread."""
    max_pings_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    """Largest body of ``POST /v1/pings``, ``/v1/owntracks`` and ``/v1/osmand``: a batch
    of 1,000 pings is about 150 KB, so 1 MiB leaves room for verbose clients."""
    max_json_body_bytes: int = Field(default=256 * 1024, ge=1024)
    """Largest body of every other route (campaigns, profiles, policy, keys, channel
    settings, feedback): the largest valid campaign is well under 256 KiB."""

    max_venue_vertices: int = Field(default=20_000, ge=4, le=10_000_000)
    """Vertices one venue's geometry may have (all rings and parts). 20,000 is a hundred
    times the most detailed outline in the fixtures and keeps one venue's index build
    near 150 ms; larger is refused (``too_many_vertices``) unless the request asks for
    ``simplify=true``."""
    venue_simplify_m: float = Field(default=1.0, gt=0, le=50)
    """Tolerance of ``simplify=true``: no point of the simplified outline moves more than
    this many metres, far below GPS accuracy (5-30 m), so the fence stays faithful."""
    max_venues_per_tenant: int = Field(default=10_000, ge=1, le=10_000_000)
    """Venues one tenant may have; an import or PUT past it is refused (422
    ``too_many_venues``)."""

    template_max_operations: int = Field(default=20_000, ge=100, le=10_000_000)
    """Operations one template render may spend (loop iterations, calls, operators,
    filters; see ``triggers.decisions.sandbox``)."""
    template_max_output_chars: int = Field(default=32_768, ge=4096, le=10_000_000)
    """Characters one render may write in all, intermediate buffers included."""
    template_timeout_s: float = Field(default=0.05, gt=0, le=10)
    """Wall time one render may take (by the server's monotonic clock)."""
    core_rebuild_wait_s: float = Field(default=0.0, ge=0, le=60)
    """How long a ping batch waits for its tenant's index to be rebuilt after a venue,
    campaign or policy change before it goes on with the previous index. 0: never wait
    (the request that made the change waits for it instead)."""
    venue_workers: int = Field(default=2, ge=0, le=64)
    """Worker processes for venue validation and geofence index builds (started on the
    first venue write), so that one tenant's venue work does not hold the GIL the other
    tenants' requests need. 0: threads of the server process instead."""
    venue_write_vertices_per_s: float = Field(default=20_000.0, gt=0)
    """A tenant's venue-write budget: vertices of venue work a second (the positions of
    the geometries it sends plus the vertices of each index rebuild); past it, 429
    ``venue_budget_exceeded`` with Retry-After."""
    venue_write_burst_vertices: float = Field(default=400_000.0, gt=0)
    """The most a tenant's venue-write budget holds (a full bucket lets in one write of
    any size, which then pays its cost)."""
    venue_writes_queued: int = Field(default=2, ge=0, le=1000)
    """A tenant's venue writes run one at a time; this many more may wait, further ones
    get 429 ``venue_writes_busy``."""
    ping_retention_days: float = Field(default=30.0, ge=0)
    """Raw pings older than this (by when they were received) are deleted by the
    housekeeping loop; 0 keeps them forever. Presence, events, decisions and deliveries
    are kept regardless (erasure removes a user's)."""
    behaviour_retention_days: float = Field(default=90.0, ge=0)
    """Raw behaviour events older than this (by when they were received) are deleted by
    the housekeeping loop; 0 keeps them forever. Profile features bound themselves (90
    days of counts) and stay."""
    housekeeping_interval_s: float = Field(default=300.0, gt=0, le=86_400)
    """How often the housekeeping loop prunes old pings."""
    model_training_interval_s: float = Field(default=0.0, ge=0, le=30 * 86_400)
    """How often each tenant's interest and send-time models are retrained from its
    stored behaviour events (``server.models``); 0, the default, trains only on
    ``POST /v1/models/train``."""
    timer_interval_s: float = Field(default=1.0, gt=0, le=3600)
    """How often the background loop fires due DWELL / silence-EXIT timers. One second
    keeps DESIGN's "DWELL within 1 s of the threshold" promise on a live server."""
    outbox_workers: int = Field(default=1, ge=0, le=64)
    """Outbox dispatchers in this process (0: none — another process delivers). Several
    per node and several nodes are safe: claims never overlap (``SKIP LOCKED``)."""
    outbox_interval_s: float = Field(default=0.5, gt=0, le=3600)
    """How long an idle dispatcher waits before looking again (new deliveries made by
    this process wake it at once)."""
    outbox_lease_s: float = Field(default=60.0, ge=1, le=3600)
    """How long a claim lasts: a killed dispatcher's deliveries are resent after it."""
    outbox_batch: int = Field(default=100, ge=1, le=10_000)
    outbox_concurrency: int = Field(default=32, ge=1, le=1024)
    retry_base_s: float = Field(default=2.0, gt=0)
    retry_max_s: float = Field(default=600.0, gt=0)
    retry_max_attempts: int = Field(default=8, ge=1, le=100)
    retry_jitter_seed: int | None = None
    """Seeds the retry jitter (tests, replays); unset: random."""
    stream_token_ttl_s: float = Field(default=3600.0, ge=60, le=30 * 86_400)
    """Default lifetime of a minted in-app stream token."""
    rate_limit_shared: bool = True
    """With PostgreSQL, keep each key's bucket in the database for every node
    (:mod:`server.rate_limits`; a node leases a tenth of a second of tokens at a time), so
    a key gets its rate across the cluster. ``false``: each node its own bucket, so N
    nodes allow up to N times the rate, with no database call for it."""
    stream_fanout: bool = True
    """With PostgreSQL, hand live in-app frames to the user's streams on every node
    (``LISTEN``/``NOTIFY`` on a connection of its own), not only on the node that sent
    them. ``false`` for a single node, or where something else fans out. The embedded
    store is one process and never needs it."""
    stream_presence_refresh_s: float = Field(default=15.0, ge=1, le=3600)
    """With the fan-out on, how often a node renews its rows of who has a stream open
    there (``stream_presence``); a row lapses after 3 of these, so the users of a node
    that died stop counting as online (and get pushes again) within that time."""
    outbound_allow_private: bool = False
    """Let tenants' channel settings name private, loopback and link-local destinations
    (a single-tenant install with internal webhooks). Off: only public addresses, plus
    ``outbound_allowed`` (see :mod:`server.egress`)."""
    outbound_allowed: str = ",".join(DEFAULT_ALLOWED)
    """Comma-separated destinations tenants may name although they are not public, each
    for one channel: ``CHANNEL:DESTINATION`` with ``CHANNEL`` one of ``webhook``,
    ``mqtt``, ``fcm``, ``apns``, ``email``, ``sms`` or ``*`` (all), and ``DESTINATION``
    a ``host:port``, a ``host`` or an address block (``webhook:10.1.0.0/16``). An entry
    without a channel is for every channel (the form before channels). The default,
    ``mqtt:127.0.0.1:1883``, is the shared MQTT broker the ``mqtt`` channel points at
    unless told otherwise, for that channel only (see :mod:`server.egress`)."""
    console_secret: str | None = Field(default=None, min_length=32)
    """Signs the web console's session cookies (HMAC-SHA256). Unset: a random secret
    per process, so sessions end at a restart and hold on one node only; set the same
    value on every node behind one address."""
    console_session_ttl_s: float = Field(default=8 * 3600.0, ge=60, le=30 * 86_400)
    """How long a console sign-in lasts (a working day by default)."""
    console_tile_url: str = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
    """Map tiles of the console (``{z}/{x}/{y}``); empty for none: venue outlines show on
    a plain background either way."""
    log_format: LogFormat = LogFormat.JSON
    log_level: str = "INFO"

    @field_validator("database_url")
    @classmethod
    def _postgres_only(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if not value.startswith(("postgresql://", "postgres://")):
            raise ValueError("must be a postgresql:// URL (or unset for the embedded store)")
        return value

    @field_validator("outbound_allowed")
    @classmethod
    def _egress_entries(cls, value: str) -> str:
        EgressPolicy.parse(False, value.split(","))  # raises naming a bad entry
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        upper = value.upper()
        if upper not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return upper

    def egress(self) -> EgressPolicy:
        """Where tenants' channel settings may point (see :mod:`server.egress`)."""
        return EgressPolicy.parse(self.outbound_allow_private, self.outbound_allowed.split(","))

    def render_limits(self) -> RenderLimits:
        """The bounds of a template render (see ``triggers.decisions.sandbox``)."""
        return RenderLimits(max_operations=self.template_max_operations,
                            max_output_chars=self.template_max_output_chars,
                            timeout_s=self.template_timeout_s)

    def rate_for(self, role: str) -> RateLimit:
        """The bucket of a role (``admin``, ``manager``, ``sdk``)."""
        return RateLimit(per_s=float(getattr(self, f"rate_{role}_per_s")),
                         burst=int(getattr(self, f"rate_{role}_burst")))


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment, with ``overrides`` (CLI flags; ``None`` = not
    given) on top. Raises :class:`SettingsError` naming the offending key."""
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**given)
    except ValidationError as exc:
        raise SettingsError(_describe(exc, given)) from exc


def _describe(exc: ValidationError, given: dict[str, Any]) -> str:
    lines = []
    for error in exc.errors():
        loc = [str(part) for part in error["loc"]]
        key = loc[0] if loc else "?"
        if key in given:
            name = f"--{key.replace('_', '-')}"
        elif key == "database_url":
            name = "DATABASE_URL"
        else:
            name = ENV_PREFIX + key.upper()
        lines.append(f"{name}: {error['msg']}")
    return "; ".join(lines)
