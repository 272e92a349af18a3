"""The tenants-and-keys role: who the tenants are, their API keys and stream secrets."""

from __future__ import annotations

from typing import Protocol

from server.store.base import KeyRecord, Role, TenantRecord


class TenantDirectory(Protocol):
    """Which tenants exist: what every loop that visits each tenant asks first. Part of
    each role that has such a loop (ingest's timers, the outbox, housekeeping)."""

    async def list_tenants(self) -> list[TenantRecord]:
        """Every tenant, by id (for background loops that visit each)."""
        ...


class TenantStore(TenantDirectory, Protocol):
    """Tenants, their API keys (stored by hash) and their stream-token secrets."""

    async def ensure_tenant(self, tenant_id: str, *, name: str = "") -> TenantRecord:
        """The tenant, created (with the default policy, catalogue version 0) if missing;
        ``created_at`` is the store's clock."""
        ...

    async def get_tenant(self, tenant_id: str) -> TenantRecord | None: ...

    async def create_key(
        self, tenant_id: str, *, key_id: str, key_hash: str, role: Role, name: str = ""
    ) -> KeyRecord:
        """Store a key by its hash (:func:`~server.store.base.hash_key`). Raises
        ``ConflictError`` when the hash or the tenant's ``key_id`` exists,
        ``NotFoundError`` for an unknown tenant."""
        ...

    async def find_key(self, key_hash: str) -> KeyRecord | None:
        """The key with this hash, revoked or not (the caller refuses revoked ones).
        The one lookup not scoped by tenant: the hash is the credential."""
        ...

    async def list_keys(self, tenant_id: str) -> list[KeyRecord]: ...

    async def revoke_key(self, tenant_id: str, key_id: str) -> bool:
        """Mark the key revoked; False when the tenant has no such key."""
        ...

    async def stream_secret(self, tenant_id: str) -> str:
        """The tenant's secret for in-app stream tokens, made (random, 256 bits) on first
        use; ``NotFoundError`` for an unknown tenant."""
        ...

    async def stream_token_epochs(self, tenant_id: str, user_id: str) -> tuple[int, int]:
        """``(tenant epoch, user epoch)`` of stream tokens: a token minted at lower ones
        is revoked. Both 0 until first revoked; an unknown tenant reads (0, 0)."""
        ...

    async def revoke_stream_tokens(self, tenant_id: str, user_id: str | None = None) -> int:
        """Revoke every stream token minted so far: of ``user_id``, or of the whole tenant
        when ``None``; returns the new epoch (its predecessor plus one).
        ``erase_user`` does this for the user it erases, in its transaction. The user's
        epoch is kept under :func:`~server.store.base.token_user_key`, not the id, since
        it must outlive an erasure. ``NotFoundError`` for an unknown tenant."""
        ...
