"""The Store contract of stream-token revocation (issue 14), on both stores: epochs per
tenant and per user, bumped by a revocation and by erasing the user."""

from __future__ import annotations

import pytest

from server.store import NotFoundError, Store
from tests.server.conftest import OTHER_TENANT

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_token_epochs_are_zero_until_revoked(store: Store, tenant: str) -> None:
    assert await store.stream_token_epochs(tenant, "u1") == (0, 0)
    assert await store.stream_token_epochs("no-such-tenant", "u1") == (0, 0)


async def test_revoking_a_users_tokens_bumps_that_users_epoch_only(
    store: Store, tenant: str
) -> None:
    assert await store.revoke_stream_tokens(tenant, "u1") == 1
    assert await store.revoke_stream_tokens(tenant, "u1") == 2
    assert await store.stream_token_epochs(tenant, "u1") == (0, 2)
    assert await store.stream_token_epochs(tenant, "u2") == (0, 0)
    assert await store.stream_token_epochs(OTHER_TENANT, "u1") == (0, 0)


async def test_revoking_a_tenants_tokens_bumps_its_epoch_for_every_user(
    store: Store, tenant: str
) -> None:
    await store.revoke_stream_tokens(tenant, "u1")
    assert await store.revoke_stream_tokens(tenant) == 1
    assert await store.stream_token_epochs(tenant, "u1") == (1, 1)
    assert await store.stream_token_epochs(tenant, "u2") == (1, 0)
    assert await store.stream_token_epochs(OTHER_TENANT, "u2") == (0, 0)


async def test_erasing_a_user_revokes_their_tokens_even_without_a_profile(
    store: Store, tenant: str
) -> None:
    counts = await store.erase_user(tenant, "u1")
    assert set(counts.values()) == {0}  # nothing stored about them but their tokens
    assert await store.stream_token_epochs(tenant, "u1") == (0, 1)
    await store.erase_user(tenant, "u1")
    assert await store.stream_token_epochs(tenant, "u1") == (0, 2)
    assert await store.stream_token_epochs(OTHER_TENANT, "u1") == (0, 0)


async def test_revoking_tokens_of_an_unknown_tenant_raises_not_found(store: Store) -> None:
    with pytest.raises(NotFoundError):
        await store.revoke_stream_tokens("no-such-tenant")
    with pytest.raises(NotFoundError):
        await store.revoke_stream_tokens("no-such-tenant", "u1")
