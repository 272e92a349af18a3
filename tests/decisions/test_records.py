"""The decision record's JSON: the same bytes as when ``Decision`` was a pydantic model."""

from __future__ import annotations

import dataclasses
import json

import pytest
from pydantic import ValidationError

from tests.decisions.builders import FORUM, at, campaign, event, profile, run, venue
from triggers.decisions import Chosen, Considered, Decision, Outcome, Reason

# ``Decision(...).to_json()`` of ``_decision()`` while Decision and Chosen were pydantic
# models (which coerced the int times to float): the stored bodies and ``simulate --json``.
MODEL_ERA_JSON = (
    '{"user_id":"u1","venue_id":"forum","event":"dwell","at":1795996800.0,"visit_id":"u1-v1",'
    '"decided_at":1795996860.0,"chosen":{"campaign_id":"c1","variant_id":"a",'
    '"title":"Hei \u201cAino\u201d","body":"Tervetuloa\\n","channel":"inbox","locale":"fi",'
    '"expires_at":1796000460.0},"considered":[{"campaign_id":"c1","outcome":"sent",'
    '"reason":"sent","variant_id":"a","detail":null},{"campaign_id":"c2","outcome":"skipped",'
    '"reason":"cooldown","variant_id":null,"detail":"last push 120 s ago"}],'
    '"notes":["opening_hours \'x\' not understood"]}'
)


def _decision() -> Decision:
    """A push and a cooldown line, with every time an int."""
    return Decision(
        user_id="u1", venue_id="forum", event="dwell", at=1_795_996_800, visit_id="u1-v1",
        decided_at=1_795_996_860,
        chosen=Chosen(campaign_id="c1", variant_id="a", title="Hei \u201cAino\u201d",
                      body="Tervetuloa\n", channel="inbox", locale="fi",
                      expires_at=1_796_000_460),
        considered=(
            Considered("c1", Outcome.SENT, Reason.SENT, "a"),
            Considered("c2", Outcome.SKIPPED, Reason.COOLDOWN, None, "last push 120 s ago"),
        ),
        notes=("opening_hours 'x' not understood",),
    )


def test_json_is_byte_identical_to_the_pydantic_model_era() -> None:
    assert _decision().to_json() == MODEL_ERA_JSON


def test_json_round_trips_through_the_validator() -> None:
    back = Decision.from_json_obj(json.loads(MODEL_ERA_JSON))
    assert back == _decision()
    assert back.to_json() == MODEL_ERA_JSON
    assert isinstance(back.considered, tuple) and isinstance(back.notes, tuple)
    assert back.considered[1].reason is Reason.COOLDOWN


def test_decide_records_int_times_as_floats() -> None:
    now = int(at("2026-11-28 14:00"))
    decision = run(event(FORUM, now - 60), profile(), [campaign(offer_ttl_s=3600)],
                   venue(FORUM), now=now)
    assert decision.chosen is not None
    times = (decision.at, decision.decided_at, decision.chosen.expires_at)
    assert times == (now - 60, now, now + 3600)
    assert all(type(t) is float for t in times)


def test_validator_rejects_unknown_fields() -> None:
    data = json.loads(MODEL_ERA_JSON)
    data["chosen"]["priority"] = 1
    with pytest.raises(ValidationError, match="priority"):
        Decision.from_json_obj(data)


def test_records_are_values_compared_and_hashed_by_field() -> None:
    assert _decision() == _decision()
    assert hash(_decision()) == hash(_decision())
    assert _decision() != dataclasses.replace(_decision(), notes=())
    with pytest.raises(dataclasses.FrozenInstanceError):
        _decision().at = 0.0  # type: ignore[misc]
