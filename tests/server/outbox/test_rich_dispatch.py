"""Rich content from the outbox row to the peer, on both stores: the dispatcher builds
the message from the stored row, so what was chosen at decision time is what is sent
(a signed webhook here), and what the in-app inbox lists."""

from __future__ import annotations

from dataclasses import replace

import pytest

from server.store import DeliveryStatus, Store
from tests.server.api.conftest import FakeClock
from tests.server.outbox.conftest import WEBHOOK_SECRET, dispatcher, webhook_receiver
from tests.server.store.builders import delivery
from triggers.decisions.rich import Button, RichContent

pytestmark = pytest.mark.asyncio(loop_scope="session")

RICH = RichContent(
    image_url="https://cdn.forum.example/img/stroller.jpg", image_alt="A red stroller",
    image_tag="mother_baby", deep_link="forumapp://offers/baby-week",
    buttons=(Button(id="shop", title="Shop now",
                    deep_link="https://forum.example/offers/baby-week"),))


async def _rich_delivery(store: Store, tenant: str, clock: FakeClock, channel: str) -> str:
    row = replace(delivery("u1", "k", at=clock.now), channel=channel, rich=RICH,
                  expires_at=clock.now + 3600)
    async with store.batch(tenant, ["u1"]) as tx:
        [created] = await tx.insert_deliveries([row])
    return created.delivery_id


async def test_the_webhook_peer_gets_the_rich_content_chosen_at_decision_time(
    store: Store, tenant: str, clock: FakeClock
) -> None:
    async with webhook_receiver(clock) as rx, dispatcher(store, clock) as d:
        await store.put_channel_config(tenant, {"webhook": {"url": rx.url,
                                                            "secret": WEBHOOK_SECRET}})
        await _rich_delivery(store, tenant, clock, "webhook")
        assert (await d.run_once([tenant])).count(DeliveryStatus.SENT) == 1
    [message] = rx.accepted
    assert message["rich"] == RICH.as_json()
    assert rx.bad_signatures == 0


async def test_the_inbox_lists_the_rich_content(
    store: Store, tenant: str, clock: FakeClock
) -> None:
    async with dispatcher(store, clock) as d:
        did = await _rich_delivery(store, tenant, clock, "inbox")
        await d.run_once([tenant])
    [listed] = await store.list_inbox(tenant, "u1")
    assert listed.delivery_id == did and listed.rich == RICH
