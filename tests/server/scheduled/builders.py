"""A tenant with the case study's scheduled campaign and mothers in three zone groups."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from server.store import PolicyRecord, Store
from tests.decisions.builders import campaign, profile
from triggers.decisions import TenantPolicy

TENANT = "acme"
CAMPAIGN = "mother-baby"
HELSINKI_MOTHERS = [f"hel-{i}" for i in range(5)]
NEW_YORK_MOTHERS = [f"nyc-{i}" for i in range(3)]
ZONELESS_MOTHERS = [f"any-{i}" for i in range(2)]
"""Profiles without a zone: their slots are in the tenant's zone, Asia/Tokyo."""
MOTHERS = HELSINKI_MOTHERS + NEW_YORK_MOTHERS + ZONELESS_MOTHERS


def relaxed_policy(**changes: Any) -> TenantPolicy:
    """Every global rule off, so only what a test turns on decides."""
    rules: dict[str, Any] = {"quiet_hours": None, "max_per_day": None, "min_gap_s": 0,
                             "fatigue_after_ignored": None,
                             "default_timezone": "Asia/Tokyo"}
    rules.update(changes)
    return TenantPolicy.model_validate(rules)


async def setup_case(
    store: Store, *, times: Sequence[str] = ("10:00", "15:00"), grace_s: float = 3600,
    policy: TenantPolicy | None = None, **campaign_data: Any,
) -> None:
    await store.ensure_tenant(TENANT)
    await store.put_policy(TENANT, PolicyRecord(policy or relaxed_policy()))
    campaign_data.setdefault("variants", [{"id": "warm", "title": "Hei {{ user.first_name }}",
                                           "body": "A quiet moment for you and the baby"}])
    await store.create_campaign(TENANT, campaign(
        CAMPAIGN, trigger={"scheduled": {"times": list(times), "grace_s": grace_s}},
        venues={}, audience={"any_of_tags": ["mother_baby"]}, **campaign_data))
    for user_id in HELSINKI_MOTHERS:
        await store.put_profile(TENANT, profile(user_id, tags=["mother_baby"]))
    for user_id in NEW_YORK_MOTHERS:
        await store.put_profile(TENANT, profile(
            user_id, tags=["mother_baby"], attributes={"timezone": "America/New_York"}))
    for user_id in ZONELESS_MOTHERS:
        await store.put_profile(TENANT, profile(
            user_id, tags=["mother_baby"], attributes={"timezone": None}))
    await store.put_profile(TENANT, profile("hel-fan", tags=["sports_fan"]))
