"""Every list endpoint pages with ``limit`` and an opaque ``cursor``: walking the pages
gives every item exactly once, in the list's order, rows sharing a time included, on
both stores."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from server.auth import Role
from server.store import DecisionRecord, DeliveryStatus
from tests.server.api.conftest import Api, campaign_body, venue_feature
from tests.server.api.test_service import assert_error
from tests.server.conftest import TENANT
from tests.server.pipeline.builders import T0
from tests.server.store.builders import decision_row, delivery

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def _walk(api: Api, path: str, key: str, limit: int,
                role: Role = Role.ADMIN) -> list[dict[str, Any]]:
    """Every item of a list, page by page."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    glue = "&" if "?" in path else "?"
    for _ in range(100):
        query = f"{path}{glue}limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        _, page = await api.call("GET", query, role=role, expect=200)
        assert len(page[key]) <= limit
        items += page[key]
        cursor = page["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("the pages never ended")


@pytest.mark.parametrize("limit", [1, 3, 50])
async def test_venue_pages_hold_every_venue_once(api: Api, limit: int) -> None:
    ids = [f"venue-{i:02d}" for i in range(7)]
    await api.call("POST", "/v1/venues/import", expect=200, json_body={
        "type": "FeatureCollection", "features": [venue_feature(i) for i in reversed(ids)]})
    assert [f["id"] for f in await _walk(api, "/v1/venues", "features", limit)] == ids
    # The older paging by id still works beside the cursor.
    _, page = await api.call("GET", "/v1/venues?limit=2&after=venue-03", expect=200)
    assert [f["id"] for f in page["features"]] == ["venue-04", "venue-05"]
    assert page["next_after"] == "venue-05" and page["next_cursor"]


@pytest.mark.parametrize("limit", [1, 3, 50])
async def test_campaign_pages_hold_every_campaign_once(api: Api, limit: int) -> None:
    ids = [f"c{i}" for i in range(7)]
    for cid in reversed(ids):
        await api.call("POST", "/v1/campaigns", json_body=campaign_body(cid), expect=201)
    await api.call("POST", "/v1/campaigns/c3/activate", expect=200)
    assert [c["id"] for c in await _walk(api, "/v1/campaigns", "campaigns", limit)] == ids
    drafts = await _walk(api, "/v1/campaigns?status=draft", "campaigns", limit)
    assert [c["id"] for c in drafts] == [i for i in ids if i != "c3"]


@pytest.mark.parametrize("limit", [1, 2, 4, 50])
async def test_decision_pages_hold_every_decision_once_when_times_tie(
    api: Api, limit: int,
) -> None:
    # Nine decisions at three instants: a page boundary falls inside a tie.
    rows = [decision_row("u1", f"e{i}", decided_at=T0 + 60 * (i // 3)) for i in range(9)]
    rows = [DecisionRecord(r.decision_key, replace(r.decision, visit_id=r.decision_key))
            for r in rows]  # told apart by their visit
    async with api.store.batch(TENANT, ["u1"]) as tx:
        await tx.insert_decisions(rows)
    walked = await _walk(api, "/v1/users/u1/decisions", "decisions", limit)
    assert sorted(d["visit_id"] for d in walked) == sorted(r.decision_key for r in rows)
    # Newest first; within an instant, by key, last first.
    assert [d["visit_id"] for d in walked] == [
        r.decision_key for r in sorted(rows, key=lambda r: (r.decision.decided_at,
                                                             r.decision_key), reverse=True)]


@pytest.mark.parametrize("limit", [1, 3, 50])
async def test_inbox_pages_hold_every_message_once_when_times_tie(
    api: Api, limit: int,
) -> None:
    rows = [delivery("u1", f"k{i}", at=T0 + 60 * (i // 4)) for i in range(7)]
    async with api.store.batch(TENANT, ["u1"]) as tx:
        created = await tx.insert_deliveries(rows)
    for row in created:
        await api.store.update_delivery(TENANT, row.delivery_id, status=DeliveryStatus.SENT,
                                        now=T0)
    walked = await _walk(api, "/v1/users/u1/inbox", "messages", limit)
    assert sorted(m["delivery_id"] for m in walked) == sorted(r.delivery_id for r in created)
    assert [m["created_at"] for m in walked] == sorted((r.created_at for r in rows),
                                                       reverse=True)


@pytest.mark.parametrize("cursor", ["not-a-cursor", "WyJ2ZW51ZXMiLCJ4Il0"])
async def test_a_cursor_that_is_not_this_lists_is_a_422(api: Api, cursor: str) -> None:
    # The second is a venue list's cursor, offered to the campaign list.
    _, answer = await api.call("GET", f"/v1/campaigns?cursor={cursor}", expect=422)
    assert_error(answer, "invalid_cursor", "cursor")
