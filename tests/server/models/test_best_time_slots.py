"""``best_time`` fanned out by the service on both stores: each Helsinki mother is sent
once, at her best hour inside the window by the send-time model, or at the fallback
without enough data; the decision's note says which. And the model's hours (UTC) are
shifted into the user's zone."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from server.models import TenantModels
from server.scheduler import schedule_round
from server.store import Store
from server.tenant_core import TenantCores
from tests.decisions.builders import HELSINKI, at, campaign
from tests.server.scheduled.builders import CAMPAIGN, HELSINKI_MOTHERS, TENANT, setup_case
from triggers.decisions.predicted import LearnedFacts
from triggers.learning.scoring import SendTimeScorer

pytestmark = pytest.mark.asyncio(loop_scope="session")

BEST_HOUR = {"hel-0": 19, "hel-1": 12, "hel-2": 7}
"""hel-2's best hour (07:00) is outside the window: her best inside it is the next best."""


def _peaked(hour: int, second: int = 9) -> list[float]:
    profile = [0.01] * 24
    profile[hour], profile[second] = 0.5, 0.2
    return profile


class _Profiles:
    """The send-time model's local profiles of the users with enough data."""

    def facts(self, user_id: str, now: float) -> LearnedFacts:
        return LearnedFacts()

    def local_profile(self, user_id: str, tz: str, at: float) -> Sequence[float] | None:
        hour = BEST_HOUR.get(user_id)
        return None if hour is None else _peaked(hour)

    async def view(self, tenant_id: str, now: float) -> _Profiles:
        return self


async def _sent_at(store: Store, cores: TenantCores) -> dict[str, tuple[str, str]]:
    """Walk every slot of 2026-12-07 in Helsinki, in time order: user → (local time of
    the slot she was decided at, the decision's first note)."""
    times = sorted({f"{h:02d}:00" for h in range(8, 21)} | {"10:30"})
    for hhmm in times:
        await schedule_round(store, cores, TENANT, at(f"2026-12-07 {hhmm}") + 60)
    sent: dict[str, tuple[str, str]] = {}
    for user in HELSINKI_MOTHERS:
        records = await store.list_decisions(TENANT, user)
        assert len(records) <= 1, user
        for r in records:
            local = datetime.fromtimestamp(r.decision.at, ZoneInfo(HELSINKI)).strftime("%H:%M")
            sent[user] = (local, r.decision.notes[0])
    return sent


async def test_each_user_is_sent_once_at_her_best_hour_in_the_window_or_the_fallback(
        store: Store) -> None:
    await setup_case(store)
    await store.put_campaign(TENANT, campaign(
        CAMPAIGN, trigger={"scheduled": {"times": ["10:00"], "best_time": {
            "fallback": "10:30", "window": "08:00-21:00"}}},
        venues={}, audience={"any_of_tags": ["mother_baby"]},
        variants=[{"id": "warm", "title": "Hei", "body": "A quiet moment"}]))
    cores = TenantCores()
    cores.learned = _Profiles()
    sent = await _sent_at(store, cores)
    assert sent["hel-0"][0] == "19:00"
    assert sent["hel-1"][0] == "12:00"
    assert sent["hel-2"][0] == "09:00"
    assert sent["hel-3"] == ("10:30", "best_time: fallback 10:30 (not enough send-time "
                                      "data for this user)")
    assert sent["hel-0"][1] == ("best_time: 19:00, the user's best hour in 08:00-21:00 "
                                "(send-time model)")
    helsinki = [d.user_id for d in await store.list_deliveries(TENANT, limit=100)
                if d.user_id in HELSINKI_MOTHERS]
    assert sorted(helsinki) == HELSINKI_MOTHERS  # once each


async def test_the_models_utc_hours_are_shifted_into_the_users_zone() -> None:
    utc_profile = np.full((1, 24), 0.01, dtype=np.float32)
    utc_profile[0, 17] = 0.8  # 17:00 UTC is 19:00 in Helsinki in December (UTC+2)
    scorer = SendTimeScorer({"hel-0": 0}, utc_profile, utc_profile[0])
    models = TenantModels(sendtime=scorer, enough=frozenset({"hel-0"}))
    local = models.local_profile("hel-0", "Europe/Helsinki", at("2026-12-07 12:00"))
    assert local is not None and int(np.argmax(local)) == 19
    assert models.local_profile("hel-9", "Europe/Helsinki", at("2026-12-07 12:00")) is None
