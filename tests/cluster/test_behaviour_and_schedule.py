"""Behaviour events and scheduled fan-out through the partitions, on a real three-node
JetStream cluster (stream and buckets with 3 replicas), a fresh PostgreSQL database,
one gateway and two workers (``--lease-s 3``):

- events posted to the gateway go through the stream to their partition's owner and
  are stored once, however often the batch is sent; "viewed a stroller, did not buy
  it" fires the offer in the owner after its delay, and a purchase cancels it — also
  when one worker is killed with SIGKILL before the delay is over;
- a scheduled slot (the case study's ``mother_baby`` audience, in UTC) gives every
  audience user exactly one decision and one push with two workers sharing the
  partitions, and still does when one worker is killed with SIGKILL in the middle of
  the fan-out: the survivor takes its partitions and resumes their cursors.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from server.cluster.local import LocalNats
from server.store import PolicyRecord, PostgresStore
from tests.cluster.harness import ADMIN_KEY, Deployment, fetch, fresh_database, wait_for
from tests.decisions.builders import campaign, profile
from tests.server.scheduled.builders import relaxed_policy

pytestmark = [pytest.mark.needs_postgres, pytest.mark.asyncio(loop_scope="session")]

LEASE_S = 3.0
DELAY_S = 5.0
"""The offer's delay: long enough for the purchase, posted right after the view, to
be processed first (a trigger only fires once its partition has caught up)."""
SHOPPERS = [f"mum-{i:02d}" for i in range(24)]
BUYERS = SHOPPERS[::2]
TENANT = "acme"
CAMPAIGN = "mother-baby"


@asynccontextmanager
async def deployment(database_url: str, tmp_path: Path,
                     *worker_args: str) -> AsyncIterator[Deployment]:
    """A gateway and workers alpha and beta sharing the partitions."""
    with LocalNats.start(3, root=tmp_path / "nats") as nats:
        async with fresh_database(database_url) as url:
            dep = Deployment(nats.urls, url, tmp_path, lease_s=LEASE_S)
            try:
                await dep.start_gateway()
                dep.start_worker("alpha", *worker_args)
                dep.start_worker("beta", *worker_args)
                await wait_for(lambda: owned_by(dep, {"alpha", "beta"}), 20,
                               "two workers share the partitions")
                yield dep
            except BaseException:
                print(dep.logs())
                raise
            finally:
                dep.stop()


async def owned_by(dep: Deployment, workers: set[str]) -> bool:
    return set((await dep.owners()).values()) == workers


# --------------------------------------------------------------------------- events


def offer_campaign() -> dict[str, Any]:
    return {"id": "still_thinking", "name": "Still thinking", "status": "active",
            "trigger": {"behaviour": {
                "kind": "view", "item": {"category": "baby"}, "delay_s": DELAY_S,
                "unless": {"kind": "purchase", "same_item": True, "within_s": 3600}}},
            "variants": [{"id": "a", "title": "Still thinking about {{ item.name }}?",
                          "body": "{{ item.name }}: 10% off today only"}]}


def stroller(kind: str, user: str, at: float) -> dict[str, Any]:
    return {"event_id": f"{kind}-{user}", "user_id": user, "ts": at, "kind": kind,
            "item": {"id": "stroller-9", "name": "City stroller", "category": "baby"}}


async def post_events(session: aiohttp.ClientSession, base: str, key: str,
                      events: Sequence[Any]) -> dict[str, Any]:
    async with session.post(f"{base}/v1/events", json={"events": list(events)},
                            headers={"Authorization": f"Bearer {key}"}) as resp:
        assert resp.status == 200, await resp.text()
        return dict(await resp.json())


async def sdk_key(session: aiohttp.ClientSession, base: str) -> str:
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    async with session.post(f"{base}/v1/campaigns", headers=admin,
                            json=offer_campaign()) as resp:
        assert resp.status == 201, await resp.text()
    async with session.put(f"{base}/v1/policy", headers=admin,
                           json={"policy": {"quiet_hours": None}}) as resp:  # any hour
        assert resp.status == 200, await resp.text()
    async with session.post(f"{base}/v1/keys", headers=admin, json={"role": "sdk"}) as resp:
        assert resp.status == 201, await resp.text()
        return str((await resp.json())["key"])


@pytest.mark.parametrize("kill", [False, True], ids=["all-alive", "kill-9-before-the-delay"])
async def test_events_through_the_stream_are_stored_once_and_fire_or_cancel_in_the_owner(
    database_url: str, tmp_path: Path, kill: bool,
) -> None:
    async with deployment(database_url, tmp_path) as dep, aiohttp.ClientSession() as session:
        key = await sdk_key(session, dep.base)
        viewed_at = time.time()
        views = [stroller("view", u, viewed_at) for u in SHOPPERS]
        answer = await post_events(session, dep.base, key, [*views, {"user_id": "mum-x"}])
        assert answer["accepted"] == len(SHOPPERS)
        [rejected] = answer["rejected"]
        assert rejected["index"] == len(SHOPPERS) and rejected["field"].startswith("events[24]")
        await post_events(session, dep.base, key, views)  # the same batch again
        await post_events(session, dep.base, key, views[::-1])  # another message, same ids
        await post_events(session, dep.base, key,
                          [stroller("purchase", u, viewed_at + 1) for u in BUYERS])
        if kill:  # its triggers are pending in PostgreSQL; the survivor fires them
            dep.workers["alpha"].kill()

        async def all_decided() -> bool:  # and every trigger marked (after its commit)
            [[n, pending]] = await fetch(dep.database_url, """
                SELECT (SELECT count(*) FROM decisions),
                       (SELECT count(*) FROM behaviour_triggers WHERE state = 'pending')""")
            return bool(n == len(SHOPPERS) and pending == 0)

        await wait_for(all_decided, DELAY_S + 30, "every view decided or cancelled")
        stored = await fetch(dep.database_url,
                             "SELECT event_key FROM behaviour_events ORDER BY 1")
        assert [r["event_key"] for r in stored] == sorted(
            [f"id:view-{u}" for u in SHOPPERS] + [f"id:purchase-{u}" for u in BUYERS])
        decisions = await fetch(dep.database_url, """
            SELECT user_id, decided_at, body->'considered'->0->>'reason' AS reason
              FROM decisions""")
        reasons = {r["user_id"]: r["reason"] for r in decisions}
        assert reasons == {u: "cancelled_by_follow_up" if u in BUYERS else "sent"
                           for u in SHOPPERS}
        assert all(r["decided_at"] >= viewed_at + DELAY_S for r in decisions
                   if r["reason"] == "sent")
        pushes = await fetch(dep.database_url, "SELECT user_id, title FROM deliveries")
        assert sorted((r["user_id"], r["title"]) for r in pushes) == [
            (u, "Still thinking about City stroller?") for u in SHOPPERS if u not in BUYERS]


# --------------------------------------------------------------------------- scheduled


def mothers(n: int) -> list[str]:
    return [f"mother-{i:04d}" for i in range(n)]


async def setup_slot(url: str, audience: list[str]) -> None:
    """The audience tagged ``mother_baby`` (and sports fans outside it), in UTC, and a
    campaign whose slot is this minute: due now, for an hour."""
    store = await PostgresStore.open(url)
    try:
        await store.ensure_tenant(TENANT)
        await store.put_policy(TENANT, PolicyRecord(relaxed_policy(default_timezone="UTC")))
        for user_id in audience:
            await store.put_profile(TENANT, profile(
                user_id, tags=["mother_baby"], attributes={"timezone": "UTC"}))
        for i in range(20):
            await store.put_profile(TENANT, profile(
                f"fan-{i:02d}", tags=["sports_fan"], attributes={"timezone": "UTC"}))
        this_minute = datetime.now(UTC).strftime("%H:%M")
        await store.create_campaign(TENANT, campaign(
            CAMPAIGN, trigger={"scheduled": {"times": [this_minute], "grace_s": 3600}},
            venues={}, audience={"any_of_tags": ["mother_baby"]},
            variants=[{"id": "warm", "title": "Hei", "body": "A quiet moment for you"}]))
    finally:
        await store.close()


async def decided_count(url: str) -> int:
    [[n]] = await fetch(url, "SELECT count(*) FROM decisions")
    return int(n)


def reached(url: str, n: int) -> Callable[[], Any]:
    async def check() -> bool:
        return await decided_count(url) >= n
    return check


async def check_once_each(url: str, audience: list[str]) -> None:
    for table in ("decisions", "deliveries", "ledger"):
        rows = await fetch(url, f"SELECT user_id, count(*) AS n FROM {table} GROUP BY 1")
        assert {r["user_id"]: r["n"] for r in rows} == dict.fromkeys(audience, 1), table


async def test_a_scheduled_slot_with_two_workers_decides_each_audience_user_once(
    database_url: str, tmp_path: Path,
) -> None:
    audience = mothers(300)
    async with deployment(database_url, tmp_path, "--schedule-page-users", "40") as dep:
        await setup_slot(dep.database_url, audience)
        await wait_for(reached(dep.database_url, len(audience)), 60,
                       "every mother decided")

        async def every_partition_done() -> bool:  # one cursor each: both workers walked
            [[n]] = await fetch(dep.database_url,
                                "SELECT count(*) FROM schedule_slots WHERE done")
            return bool(n == dep.partitions)

        await wait_for(every_partition_done, 10, "every partition's cursor done")
        await check_once_each(dep.database_url, audience)


async def test_kill_9_of_a_worker_mid_fan_out_leaves_the_slot_to_the_survivor(
    database_url: str, tmp_path: Path,
) -> None:
    audience = mothers(2000)
    async with deployment(database_url, tmp_path, "--schedule-page-users", "10") as dep:
        await setup_slot(dep.database_url, audience)
        await wait_for(reached(dep.database_url, 200), 60, "the fan-out started",
                       every_s=0.05)
        dep.workers["alpha"].kill()
        at_kill = await decided_count(dep.database_url)
        assert at_kill < len(audience), "the fan-out was over before the kill"
        await wait_for(lambda: owned_by(dep, {"beta"}), LEASE_S * 3, "beta owns everything")
        await wait_for(reached(dep.database_url, len(audience)), 90,
                       "the survivor completes the slot", every_s=0.5)
        await check_once_each(dep.database_url, audience)
