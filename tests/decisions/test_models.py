"""Models: built from scenario YAML / API JSON, errors name the field path, defaults."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from triggers.decisions import Campaign, CampaignStatus, Profile, TenantPolicy

SCENARIO = """
policy: {quiet_hours: "22:00-08:00", max_per_day: 3, min_gap_s: 1800}
profiles:
  - user_id: u1
    attributes: {age: 34, gender: f, locale: zh-CN, timezone: Asia/Shanghai}
    tags: [mother_baby]
campaigns:
  - id: diapers
    trigger: {event: dwell, dwell_s: 300}
    venues: {kinds: [mall]}
    audience: {any_of_tags: [mother_baby]}
    schedule: {hours: "10:00-21:00"}
    caps: {per_user: {count: 1, period_s: 86400}, cooldown_s: 3600}
    priority: 5
    variants:
      - {id: a, weight: 50, title: "...", body: "Hi {{ user.first_name }}"}
      - {id: b, weight: 50, title: "...", body: "..."}
    control_pct: 10
"""


def test_design_scenario_shapes_build() -> None:
    data = yaml.safe_load(SCENARIO)
    policy = TenantPolicy.model_validate(data["policy"])
    user = Profile.model_validate(data["profiles"][0])
    diapers = Campaign.model_validate(data["campaigns"][0])
    assert policy.max_per_day == 3
    assert user.attributes.timezone == "Asia/Shanghai" and user.tags == ("mother_baby",)
    assert diapers.status is CampaignStatus.ACTIVE
    assert diapers.arms == (("a", 50.0), ("b", 50.0))
    assert diapers.channels == ("inbox",) and diapers.offer_ttl_s == 3600


def test_policy_defaults() -> None:
    assert TenantPolicy().model_dump() == {
        "quiet_hours": "22:00-08:00", "max_per_day": 3, "max_per_week": None,
        "min_gap_s": 1800.0, "fatigue_after_ignored": 3, "learned_caps": False,
        "one_push_per_event": True,
        "default_timezone": "UTC", "country": None,
    }


def _error_locs(model: type[Any], data: dict[str, Any]) -> list[tuple[Any, ...]]:
    with pytest.raises(ValidationError) as info:
        model.model_validate(data)
    return [tuple(e["loc"]) for e in info.value.errors()]


BASE: dict[str, Any] = {"id": "c", "trigger": {"event": "enter"},
                        "variants": [{"id": "a", "title": "t", "body": "b"}]}


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        ({"variants": [{"id": "a", "title": "t", "body": "b", "weight": -1}]},
         ("variants", 0, "weight")),
        ({"trigger": {"event": "enter", "dwell_s": 300}}, ("trigger",)),
        ({"trigger": {"event": "linger"}}, ("trigger", "event")),
        ({"schedule": {"hours": "10-21"}}, ("schedule", "hours")),
        ({"schedule": {"hours": 5}}, ("schedule", "hours")),
        ({"schedule": {"days": ["mon"]}}, ("schedule", "days")),
        ({"schedule": {"start": "2026-11-28T10:00:00"}}, ("schedule", "start")),
        ({"caps": {"per_user": {"count": 0, "period_s": 60}}}, ("caps", "per_user", "count")),
        ({"control_pct": 101}, ("control_pct",)),
        ({"channels": ["pigeon"]}, ("channels",)),
        ({"variants": []}, ("variants",)),
        ({"audience": {"any_of_tag": ["x"]}}, ("audience", "any_of_tag")),
        ({"status": "live"}, ("status",)),
    ],
)
def test_campaign_errors_name_the_field(change: dict[str, Any], loc: tuple[Any, ...]) -> None:
    assert loc in _error_locs(Campaign, {**BASE, **change})


def test_variant_renditions_must_agree_on_weight() -> None:
    variants = [{"id": "a", "weight": 1, "title": "t", "body": "b", "locale": "fi"},
                {"id": "a", "weight": 2, "title": "t", "body": "b", "locale": "sv"}]
    with pytest.raises(ValidationError, match="renditions disagree on weight"):
        Campaign.model_validate({**BASE, "variants": variants})


@pytest.mark.parametrize(
    ("data", "loc"),
    [
        ({"user_id": "u", "attributes": {"timezone": "Mars/Olympus"}}, ("attributes", "timezone")),
        ({"user_id": "u", "attributes": {"timezone": 8}}, ("attributes", "timezone")),
        ({"user_id": "u", "attributes": {"age": -1}}, ("attributes", "age")),
        ({"user_id": "u", "attributes": {"pets": ["cat"]}}, ("attributes",)),
        ({"user_id": ""}, ("user_id",)),
        ({"user_id": "u", "first_seen": "yesterday"}, ("first_seen",)),
    ],
)
def test_profile_errors_name_the_field(data: dict[str, Any], loc: tuple[Any, ...]) -> None:
    assert loc in _error_locs(Profile, data)


def test_policy_errors_name_the_field() -> None:
    assert ("quiet_hours",) in _error_locs(TenantPolicy, {"quiet_hours": "late"})
    assert ("quiet_hours",) in _error_locs(TenantPolicy, {"quiet_hours": 22})
    assert ("default_timezone",) in _error_locs(TenantPolicy, {"default_timezone": 8})
    assert ("one_push_per_event",) in _error_locs(TenantPolicy, {"one_push_per_event": False})


def test_times_accept_iso_and_epoch() -> None:
    a = Profile.model_validate({"user_id": "u", "first_seen": "2026-11-28T10:00:00+02:00"})
    b = Profile.model_validate({"user_id": "u", "first_seen": 1_795_852_800})
    assert a.first_seen == 1_795_852_800.0 == b.first_seen


def test_models_are_frozen() -> None:
    campaign = Campaign.model_validate(BASE)
    with pytest.raises(ValidationError):
        campaign.priority = 3
