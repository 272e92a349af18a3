"""``decide`` for a scheduled slot: the same rules as a location event (audience, caps,
quiet hours, control group, reasons), no venue, and a quiet-hours hold instead of a drop."""

from __future__ import annotations

from datetime import date
from typing import Any

from tests.decisions.builders import FORUM, at, campaign, event, policy, profile, venue
from triggers.decisions import CampaignIndex, Decision, InMemoryLedger, Profile, decide
from triggers.decisions.hold import quiet_hours_release
from triggers.decisions.models import Campaign, TenantPolicy
from triggers.decisions.slots import SlotEvent, slots_on

HELSINKI = "Europe/Helsinki"


def scheduled(campaign_id: str = "mother-baby", *times: str, **data: Any) -> Campaign:
    return campaign(campaign_id, trigger={"scheduled": {"times": list(times or ("10:00",))}},
                    venues={}, audience={"any_of_tags": ["mother_baby"]},
                    variants=[{"id": "warm", "title": "Hei {{ user.first_name }}",
                               "body": "Pieni hetki sinulle ja vauvalle"}], **data)


def slot_decision(
    camp: Campaign, user: Profile, local: str, *, pol: TenantPolicy | None = None,
    ledger: InMemoryLedger | None = None, now: float | None = None,
) -> Decision:
    """Decide the user's slot at local ``"YYYY-MM-DD HH:MM"`` (Helsinki) and record it."""
    day, hhmm = local.split()
    assert camp.trigger.scheduled is not None
    [slot] = [s for s in slots_on(camp.trigger.scheduled, camp.id,
                                  date.fromisoformat(day), HELSINKI) if s.local.endswith(hhmm)]
    ledger = ledger if ledger is not None else InMemoryLedger()
    decision = decide(SlotEvent.of(slot, user.user_id), user, CampaignIndex([camp]), None,
                      pol or policy(), ledger, slot.at if now is None else now,
                      campaign_id=camp.id)
    for entry in decision.ledger_entries():
        ledger.record(entry)
    return decision


def mother(user_id: str = "u1") -> Profile:
    return profile(user_id, tags=["mother_baby"])


def test_a_slot_sends_to_the_audience_with_no_venue() -> None:
    decision = slot_decision(scheduled(), mother(), "2026-12-07 10:00")
    assert decision.chosen is not None
    assert decision.chosen.title == "Hei Aino"
    assert (decision.event, decision.venue_id) == ("scheduled", None)
    assert decision.visit_id == "mother-baby@2026-12-07T10:00@u1"
    [entry] = decision.ledger_entries()
    assert entry.venue_id == ""


def test_a_user_outside_the_audience_is_not_in_audience() -> None:
    decision = slot_decision(scheduled(), profile("u2", tags=["sports_fan"]), "2026-12-07 10:00")
    assert decision.chosen is None
    assert [str(c.reason) for c in decision.considered] == ["not_in_audience"]


def test_the_daily_cap_counts_scheduled_pushes_too() -> None:
    camp = scheduled("mother-baby", "10:00", "15:00")
    ledger = InMemoryLedger()
    pol = policy(max_per_day=1)
    first = slot_decision(camp, mother(), "2026-12-07 10:00", pol=pol, ledger=ledger)
    second = slot_decision(camp, mother(), "2026-12-07 15:00", pol=pol, ledger=ledger)
    assert first.chosen is not None
    assert second.chosen is None
    assert str(second.considered[0].reason) == "global_cap"


def test_the_control_group_is_held_out_of_a_slot() -> None:
    decision = slot_decision(scheduled(control_pct=100), mother(), "2026-12-07 10:00")
    assert decision.chosen is None
    assert str(decision.considered[0].reason) == "held_out_control"
    assert decision.ledger_entries()[0].control


def test_opening_hours_do_not_apply_without_a_venue() -> None:
    camp = scheduled(schedule={"respect_opening_hours": True})
    assert slot_decision(camp, mother(), "2026-12-07 10:00").chosen is not None


def test_a_slot_in_quiet_hours_is_held_to_the_windows_end() -> None:
    # 07:00 Helsinki is inside the default quiet hours 22:00-08:00: held until 08:00.
    camp = scheduled("early", "07:00", offer_ttl_s=4 * 3600)
    decision = slot_decision(camp, mother(), "2026-12-07 07:00")
    assert decision.chosen is not None
    assert decision.decided_at == at("2026-12-07 08:00")
    assert decision.chosen.expires_at == at("2026-12-07 11:00")  # 07:00 + the 4 h TTL
    assert any("held over quiet hours" in note for note in decision.notes)
    assert decision.ledger_entries()[0].at == at("2026-12-07 08:00")


def test_a_hold_longer_than_the_ttl_drops_as_quiet_hours() -> None:
    # 23:00 to 08:00 is 9 h, more than the 1 h default TTL.
    decision = slot_decision(scheduled("late", "23:00"), mother(), "2026-12-07 23:00")
    assert decision.chosen is None
    assert str(decision.considered[0].reason) == "quiet_hours"


def test_a_location_offer_in_quiet_hours_is_still_dropped() -> None:
    night = at("2026-12-07 23:00")
    decision = decide(event(FORUM, night), profile(), CampaignIndex([campaign()]), venue(FORUM),
                      policy(), InMemoryLedger(), night)
    assert decision.chosen is None
    assert str(decision.considered[0].reason) == "quiet_hours"


def test_the_hold_ends_at_the_window_end_across_midnight_and_dst() -> None:
    # The night Helsinki falls back (2026-10-25): 23:30 is held to 08:00 EET next morning.
    evening = at("2026-10-24 23:30")
    release = quiet_hours_release("scheduled", "22:00-08:00", HELSINKI, evening, 12 * 3600)
    assert release == at("2026-10-25 08:00")
    assert release - evening == 9.5 * 3600  # an hour more than the wall clock says
    assert quiet_hours_release("enter", "22:00-08:00", HELSINKI, evening, 12 * 3600) is None
    assert quiet_hours_release("behaviour", "22:00-24:00", HELSINKI, evening, 3600) \
        == at("2026-10-25 00:00")
    assert quiet_hours_release("scheduled", None, HELSINKI, evening, 12 * 3600) is None


def test_best_time_sends_the_fallback_and_the_decision_says_so() -> None:
    camp = scheduled("best", "10:00")
    camp = camp.model_copy(update={"trigger": camp.trigger.model_validate(
        {"scheduled": {"times": ["10:00"], "best_time": {"fallback": "11:30"}}})})
    decision = slot_decision(camp, mother(), "2026-12-07 11:30")
    assert decision.chosen is not None
    assert decision.notes == ("best_time: no send-time model yet, so the fallback 11:30 "
                              "for every user",)
