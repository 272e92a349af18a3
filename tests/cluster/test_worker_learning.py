"""A partition's owner feeds the profile learner as a node does: once the round that
ended a user's visit has committed, the user's profile learns from their visits
(``first_seen``, ``last_active``), on a real three-node JetStream cluster with one
gateway and one worker, at Forum in Helsinki (OpenStreetMap outline)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from server.cluster.local import LocalNats
from tests.cluster.harness import Deployment, fetch, fresh_database, wait_for
from tests.cluster.test_kills import forum, offset, post, setup_tenant

pytestmark = [pytest.mark.needs_postgres, pytest.mark.asyncio(loop_scope="session")]

VISITOR = "user900"


def visit(centre: Any, end: float) -> list[dict[str, Any]]:
    """Two minutes inside Forum, then a minute 300 m east of it: a ping every 5 s."""
    start = end - 180
    inside = [(start + t, centre) for t in range(0, 120, 5)]
    outside = [(start + t, offset(centre, 0, 300)) for t in range(120, 180, 5)]
    return [{"user_id": VISITOR, "ts": ts, "lat": at.lat, "lng": at.lng, "accuracy_m": 8.0}
            for ts, at in inside + outside]


async def test_a_visit_ended_in_a_worker_is_learned_into_the_profile(
    database_url: str, tmp_path: Path,
) -> None:
    feature, centre = forum()
    with LocalNats.start(3, root=tmp_path / "nats") as nats:
        async with fresh_database(database_url) as url:
            dep = Deployment(nats.urls, url, tmp_path, lease_s=3.0)
            try:
                await dep.start_gateway()
                dep.start_worker("alpha")
                await wait_for(lambda: _owns_all(dep), 20, "alpha owns every partition")
                pings = visit(centre, time.time() - 5)
                async with aiohttp.ClientSession() as session:
                    key = await setup_tenant(session, dep.base, feature)
                    for i in range(0, len(pings), 10):
                        assert await post(session, dep.base, key, pings[i:i + 10])

                async def learned() -> bool:
                    rows = await fetch(url, "SELECT body FROM profiles WHERE user_id = $1",
                                       VISITOR)
                    return bool(rows) and _body(rows[0]).get("last_active") is not None

                await wait_for(learned, 30, "the visitor's profile learned from the visit")
                [exit_row] = await fetch(url, "SELECT count(*) FROM events WHERE kind = 'exit'")
                assert exit_row[0] >= 1
                profile = _body((await fetch(
                    url, "SELECT body FROM profiles WHERE user_id = $1", VISITOR))[0])
                assert pings[0]["ts"] <= profile["first_seen"] <= profile["last_active"]
                assert profile["last_active"] <= pings[-1]["ts"]
            except BaseException:
                print(dep.logs())
                raise
            finally:
                dep.stop()


async def _owns_all(dep: Deployment) -> bool:
    return set((await dep.owners()).values()) == {"alpha"}


def _body(row: Any) -> dict[str, Any]:
    body = row["body"]
    return dict(json.loads(body) if isinstance(body, str) else body)
