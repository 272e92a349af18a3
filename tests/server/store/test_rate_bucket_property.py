"""Property: however nodes interleave their takes, a shared rate bucket never grants more
than its burst plus what its rate refilled meanwhile, and never goes below empty.

Each example runs its own event loop with its own connections (one per node) on a
throwaway schema migrated once for the module: hypothesis drives plain functions."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.store.migrate import migrate
from tests.server.conftest import drop_schema

pytestmark = pytest.mark.needs_postgres


@pytest.fixture(scope="module")
def schema(database_url: str) -> Iterator[str]:
    name = f"geopush_buckets_{uuid.uuid4().hex[:10]}"

    async def setup() -> None:
        conn = await asyncpg.connect(database_url)
        try:
            await migrate(conn, name)
        finally:
            await conn.close()

    asyncio.run(setup())
    yield name
    asyncio.run(drop_schema(database_url, name))


takes = st.lists(  # (node, tokens wanted, pause before, in ms)
    st.tuples(st.integers(0, 3), st.integers(1, 6), st.integers(0, 15)),
    min_size=1, max_size=30)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=takes, burst=st.integers(1, 12), per_s=st.sampled_from([0.5, 20.0, 200.0]))
def test_nodes_never_get_more_than_burst_plus_refill(
    database_url: str, schema: str, plan: list[tuple[int, int, int]], burst: int,
    per_s: float,
) -> None:
    key = f"k-{uuid.uuid4().hex[:12]}"

    async def run() -> tuple[int, list[float], float]:
        nodes = [await asyncpg.connect(database_url, server_settings={"search_path": schema})
                 for _ in range(4)]
        granted, remaining = 0, []
        try:
            async def node(index: int) -> None:
                nonlocal granted
                for who, want, pause_ms in plan:
                    if who != index:
                        continue
                    # The drawn pause is the input: time between takes refills the bucket.
                    await asyncio.sleep(pause_ms / 1000)
                    row = await nodes[index].fetchrow(
                        "SELECT granted, remaining FROM geopush_take_rate_tokens($1, $2, $3, $4)",
                        key, per_s, float(burst), want)
                    assert row is not None and 0 <= row["granted"] <= want
                    granted += row["granted"]
                    remaining.append(row["remaining"])

            started = time.monotonic()
            await asyncio.gather(*(node(i) for i in range(4)))
            elapsed = time.monotonic() - started
        finally:
            for conn in nodes:
                await conn.close()
        return granted, remaining, elapsed

    granted, remaining, elapsed = asyncio.run(run())
    # The database's clock ran inside our own measurement, plus a little slack for it.
    assert granted <= burst + per_s * (elapsed + 0.05)
    assert all(-1e-9 <= left <= burst for left in remaining)
    if per_s * (elapsed + 0.05) < 1:
        # No whole token refilled: the takers shared exactly the burst (or all they wanted).
        assert granted == min(burst, sum(want for _, want, _ in plan))
