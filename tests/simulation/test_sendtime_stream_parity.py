"""Between trainings the service's send-time model and the simulator's follow the same new
app opens to the same hour: both add them to the trained counts with the model's
shrinkage (``triggers.learning.sendtime_stream``)."""

from __future__ import annotations

import pytest

from server.models import ModelCache, train_tenant
from server.store import MemoryStore
from server.store.roles.behaviour import BehaviourRecord
from tests.simulation.test_best_time import BEST, DAY, START, _events
from triggers.behaviour.events import BehaviourEvent
from triggers.decisions.best_time import time_choice
from triggers.simulation.sendtime import SendTimeLearner

TENANT = "acme"
LATER = START + 12 * DAY


def _evening_opens() -> list[BehaviourEvent]:
    """Mari (a morning reader in Helsinki) opens the app at 21:00 Helsinki time, four
    times an evening, for the eleven days after the training."""
    return [BehaviourEvent(user_id="mari", ts=START + day * DAY + 21 * 3600 + k * 600,
                           kind="app_open") for day in range(11) for k in range(4)]


@pytest.mark.parametrize(("user", "zone"), [
    ("mari", "Europe/Helsinki"), ("mari", "Asia/Shanghai"), ("li", "Asia/Shanghai"),
    ("new", "Europe/Helsinki")])
async def test_the_service_and_the_simulator_follow_new_opens_to_the_same_hour(
        user: str, zone: str) -> None:
    events = [*_events(), *_evening_opens()]
    store = MemoryStore()
    await store.ensure_tenant(TENANT, name="Acme")
    await store.ingest_behaviour(TENANT, [BehaviourRecord.of(e, e.ts) for e in events])
    (model,) = await train_tenant(store, TENANT, START, kinds=["sendtime"])
    assert model.promoted
    service = await ModelCache(store).view(TENANT, LATER)
    learner = SendTimeLearner(100 * DAY, START)
    learner.observe_events(events)
    simulator = learner.view_at(LATER)
    assert simulator is not None
    slot_at = LATER + 10 * 3600
    assert time_choice(BEST, service, user, zone, slot_at) == \
        time_choice(BEST, simulator, user, zone, slot_at)


async def test_the_new_opens_move_mari_to_the_evening_in_both() -> None:
    events = [*_events(), *_evening_opens()]
    learner = SendTimeLearner(100 * DAY, START)
    learner.observe_events(events)
    at_training = learner.view_at(START)
    assert at_training is not None
    before = time_choice(BEST, at_training, "mari", "Europe/Helsinki", START + 10 * 3600)
    followed = learner.view_at(LATER)
    assert followed is not None
    after = time_choice(BEST, followed, "mari", "Europe/Helsinki", LATER + 10 * 3600)
    assert before is not None and after is not None
    assert (before.local_time, after.local_time) == ("08:00", "21:00")
