"""The campaign index: selector semantics and no scanning of unrelated campaigns."""

from __future__ import annotations

from typing import Any

import pytest

from tests.decisions.builders import FORUM, GUOMAO, KLUUVI, MARIMEKKO, campaign, venue
from triggers.decisions import CampaignIndex
from triggers.decisions.index import _Buckets


@pytest.mark.parametrize(
    ("selector", "venue_id", "matches"),
    [
        ({}, GUOMAO, True),
        ({"ids": [FORUM, KLUUVI]}, KLUUVI, True),
        ({"ids": [FORUM]}, KLUUVI, False),
        ({"kinds": ["mall"]}, FORUM, True),
        ({"kinds": ["mall"]}, GUOMAO, False),
        ({"tags": ["subway"]}, GUOMAO, True),
        ({"kinds": ["transit_station"], "tags": ["shop=mall"]}, GUOMAO, False),
        ({"kinds": ["mall"], "tags": ["shop=mall"]}, FORUM, True),
        ({"parent": FORUM}, MARIMEKKO, True),
        ({"parent": FORUM}, FORUM, False),
        ({"ids": [FORUM], "kinds": ["store"]}, FORUM, False),
    ],
)
def test_selector(selector: dict[str, Any], venue_id: str, matches: bool) -> None:
    index = CampaignIndex([campaign(venues=selector)])
    assert bool(index.candidates(venue(venue_id), "enter", None)) is matches


def test_only_active_campaigns_are_indexed() -> None:
    index = CampaignIndex([campaign("on"), campaign("off", status="paused"),
                           campaign("draft", status="draft"), campaign("old", status="ended")])
    assert [c.id for c in index.candidates(venue(FORUM), "enter", None)] == ["on"]
    assert len(index.campaigns) == 4


def test_disabled_venue_has_no_candidates() -> None:
    index = CampaignIndex([campaign()])
    assert index.candidates(venue(FORUM, enabled=False), "enter", None) == []


def test_duplicate_ids_are_refused() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        CampaignIndex([campaign("x"), campaign("x")])


def test_lookup_touches_only_the_venues_buckets() -> None:
    # 2 000 campaigns for other venues; the lookup for Forum yields only its own.
    buckets = _Buckets()
    for i in range(2000):
        buckets.add(campaign(f"other-{i}", venues={"ids": [f"venue-{i}"]}))
    buckets.add(campaign("forum", venues={"ids": [FORUM]}))
    buckets.add(campaign("malls", venues={"kinds": ["mall"]}))
    assert sorted(c.id for c in buckets.lookup(venue(FORUM))) == ["forum", "malls"]


def test_candidates_are_in_arbitration_order() -> None:
    index = CampaignIndex([campaign("b", priority=1), campaign("c", priority=3),
                           campaign("a", priority=1)])
    assert [c.id for c in index.candidates(venue(FORUM), "enter", None)] == ["c", "a", "b"]


@pytest.mark.parametrize(
    ("campaign_dwell_s", "event_dwell_s", "matches"),
    [
        (None, 300, True),  # the venue's own threshold (Forum: the 300 s default)
        (None, 600, False),  # a later threshold that another campaign asked for
        (600, 600, True),
        (600, 300, False),
        (600, 900, False),  # "at least" would offer the campaign again at 900 s
    ],
)
def test_dwell_campaign_matches_only_its_own_threshold(
    campaign_dwell_s: int | None, event_dwell_s: int, matches: bool
) -> None:
    trigger: dict[str, Any] = {"event": "dwell"}
    if campaign_dwell_s is not None:
        trigger["dwell_s"] = campaign_dwell_s
    index = CampaignIndex([campaign(trigger=trigger)])
    assert bool(index.candidates(venue(FORUM), "dwell", event_dwell_s)) is matches
