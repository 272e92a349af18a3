"""A scheduled campaign with ``audience.interests``, fanned out on both stores: only the
users whose predicted interest reaches the threshold are pushed, and the others leave no
decision row (an audience miss); with no interest model promoted nobody is pushed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest

from server.scheduler import schedule_round
from server.store import Store
from server.tenant_core import TenantCores
from tests.decisions.builders import at, campaign
from tests.server.scheduled.builders import HELSINKI_MOTHERS, TENANT, setup_case
from triggers.decisions.predicted import LearnedFacts

pytestmark = pytest.mark.asyncio(loop_scope="session")

HELSINKI_TEN = at("2026-12-07 10:00")
PREDICTED = {"hel-0": 0.81, "hel-1": 0.59, "hel-2": 0.6}


class _Predicted:
    """The promoted interest model's scores for ``mother_baby``, as the service's view."""

    def __init__(self, scores: Mapping[str, float]) -> None:
        self.scores = scores

    def facts(self, user_id: str, now: float) -> LearnedFacts:
        return LearnedFacts(interests={"mother_baby": self.scores.get(user_id, 0.0)})

    def local_profile(self, user_id: str, tz: str, at: float) -> Sequence[float] | None:
        return None

    async def view(self, tenant_id: str, now: float) -> _Predicted:
        return self


async def _with_interest_campaign(store: Store) -> None:
    await setup_case(store, status="paused")
    await store.create_campaign(TENANT, campaign(
        "baby-week", trigger={"scheduled": {"times": ["10:00"]}}, venues={},
        audience={"interests": {"mother_baby": {"min": 0.6}}},
        variants=[{"id": "a", "title": "Baby week", "body": "Nappies -20 %"}]))


async def test_only_users_predicted_interested_get_the_slot(store: Store) -> None:
    await _with_interest_campaign(store)
    cores = TenantCores()
    cores.learned = _Predicted(PREDICTED)
    result = await schedule_round(store, cores, TENANT, HELSINKI_TEN, list_users=True)
    assert sorted(result.delivered_users or []) == ["hel-0", "hel-2"]
    assert await store.list_decisions(TENANT, "hel-1") == []
    assert [u for u in HELSINKI_MOTHERS if await store.list_decisions(TENANT, u)] == [
        "hel-0", "hel-2"]


async def test_without_an_interest_model_nobody_gets_the_slot(store: Store) -> None:
    await _with_interest_campaign(store)
    result = await schedule_round(store, TenantCores(), TENANT, HELSINKI_TEN,
                                  list_users=True)
    assert result.delivered_users == [] and result.deliveries == 0
