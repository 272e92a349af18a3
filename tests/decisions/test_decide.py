"""decide(): every reason code, caps, calendar days, quiet hours, fatigue, arbitration."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

import pytest

from tests.decisions.builders import (
    FORUM,
    KLUUVI,
    SANOMATALO,
    SHANGHAI,
    TUOMIOKIRKKO,
    Kind,
    at,
    campaign,
    event,
    policy,
    profile,
    reasons,
    run,
    venue,
)
from triggers.decisions import (
    CampaignIndex,
    FeedbackKind,
    InMemoryLedger,
    LedgerEntry,
    Outcome,
    Reason,
    decide,
)
from triggers.errors import TriggerError
from triggers.learning.signals import FeedbackBook

SATURDAY_2PM = at("2026-11-28 14:00")


def _entry(campaign_id: str, when: float, venue_id: str = FORUM, **kw: Any) -> LedgerEntry:
    return LedgerEntry(user_id="u1", campaign_id=campaign_id, venue_id=venue_id,
                       variant_id="a", at=when, **kw)


# One row per reason code: what differs from a campaign that would be sent to u1 entering
# Forum (Helsinki) on Saturday 2026-11-28 at 14:00 local.
REASON_TABLE: list[tuple[str, dict[str, Any]]] = [
    ("sent", {}),
    ("stale_event", {"stale": True}),
    ("not_in_audience", {"campaign": {"audience": {"any_of_tags": ["mother_baby"]}}}),
    ("outside_schedule", {"campaign": {"schedule": {"hours": "18:00-21:00"}}}),
    ("venue_closed", {"venue": {"opening_hours": "Mo-Fr 10:00-21:00; Sa 10:00-13:00; Su off"}}),
    ("quiet_hours", {"when": at("2026-11-28 23:30")}),
    ("no_channel", {"campaign": {"channels": ["sms"]}, "profile": {"channels": ["inbox"]}}),
    ("opted_out", {"profile": {"opt_outs": ["inbox"]}}),
    ("campaign_cap", {"campaign": {"caps": {"per_user": {"count": 1, "period_s": 86400}}},
                      "ledger": [_entry("c1", SATURDAY_2PM - 3600)]}),
    ("cooldown", {"campaign": {"caps": {"cooldown_s": 7200}},
                  "ledger": [_entry("c1", SATURDAY_2PM - 3600)]}),
    ("global_cap", {"ledger": [_entry("x", at("2026-11-28 09:00")),
                               _entry("y", at("2026-11-28 10:00")),
                               _entry("z", at("2026-11-28 11:00"))]}),
    ("fatigue", {"ledger": [_entry("x", at("2026-11-28 10:00"))], "ignored": 3}),
    ("learned_cap", {"ledger": [_entry("x", at("2026-11-28 10:00"))],
                     "policy": {"learned_caps": True}, "unopened_last_week": 8}),
    ("min_gap", {"ledger": [_entry("x", SATURDAY_2PM - 600)]}),
    ("held_out_control", {"campaign": {"control_pct": 100}}),
    ("template_error", {"campaign": {"variants": [{"id": "a", "title": "t",
                                                   "body": "{{ no_such_thing }}"}]}}),
    ("lower_priority", {"others": [{"id": "c0", "priority": 9}]}),
]


def _decide_row(row: dict[str, Any]) -> Any:
    ledger = InMemoryLedger(row.get("ledger", ()))
    for _ in range(row.get("ignored", 0)):
        ledger.record_feedback("u1", FeedbackKind.IGNORED)
    campaigns = [campaign("c1", **row.get("campaign", {}))]
    campaigns += [campaign(**other) for other in row.get("others", [])]
    when = row.get("when", SATURDAY_2PM)
    book = FeedbackBook()
    for n in range(row.get("unopened_last_week", 0)):  # one a day, never opened
        book.record_send("u1", "x", "a", "inbox", when - 6 * 86_400 + n * 3600)
    return run(
        event(FORUM, when, stale=row.get("stale", False)),
        profile(**row.get("profile", {})),
        campaigns,
        venue(FORUM, **row.get("venue", {})),
        pol=policy(**row.get("policy", {})),
        ledger=ledger,
        signals=book,
    )


@pytest.mark.parametrize(("expected", "row"), REASON_TABLE, ids=[r[0] for r in REASON_TABLE])
def test_reason_code_for_each_rule(expected: str, row: dict[str, Any]) -> None:
    decision = _decide_row(row)
    assert reasons(decision)["c1"] == expected
    assert (decision.chosen is not None and decision.chosen.campaign_id == "c1") == (
        expected == "sent"
    )


def test_reason_table_covers_every_reason_code() -> None:
    # slot_missed is the scheduler's, never decide's (tests/server/scheduled).
    # cancelled_by_follow_up is written when a behaviour trigger is cancelled, never by
    # decide (tests/server/api/test_events_triggers.py covers it).
    # behaviour_condition_unmet is the caller's finding (the user's behaviour events),
    # passed in as behaviour_unmet: tests/server/api/test_events_triggers.py.
    # slot_missed is the scheduler's, never decide's (tests/server/scheduled).
    # interest_below_threshold and unlikely_to_open are the caller's findings (the
    # promoted models' scores), passed in as learned_unmet: tests/decisions/test_predicted.py.
    assert {r[0] for r in REASON_TABLE} == {str(r) for r in Reason} - {
        "cancelled_by_follow_up", "behaviour_condition_unmet", "slot_missed",
        "interest_below_threshold", "unlikely_to_open"}


def test_sent_decision_carries_rendered_content_channel_and_expiry() -> None:
    decision = _decide_row({})
    assert decision.chosen is not None
    assert asdict(decision.chosen) == {
        "campaign_id": "c1", "variant_id": "a", "title": "Hei Aino", "body": "Tervetuloa",
        "channel": "inbox", "locale": None, "expires_at": SATURDAY_2PM + 3600, "rich": None,
    }
    assert (decision.user_id, decision.venue_id, decision.event, decision.at) == (
        "u1", FORUM, "enter", SATURDAY_2PM)


def test_stale_event_sends_nothing_and_records_nothing() -> None:
    ledger = InMemoryLedger()
    decision = run(event(FORUM, SATURDAY_2PM, stale=True), profile(), [campaign()],
                   venue(FORUM), ledger=ledger)
    assert decision.chosen is None
    assert ledger.entries("u1") == ()


def test_decision_is_deterministic_byte_for_byte() -> None:
    row = {"others": [{"id": "c0", "priority": 1, "control_pct": 50},
                      {"id": "c9", "audience": {"all_of_tags": ["x"]}}]}
    assert _decide_row(row).to_json() == _decide_row(row).to_json()


def test_considered_lists_campaigns_in_arbitration_order() -> None:
    decision = run(event(FORUM, SATURDAY_2PM), profile(),
                   [campaign("b", priority=1), campaign("a", priority=1),
                    campaign("z", priority=5, audience={"all_of_tags": ["nope"]})],
                   venue(FORUM))
    assert [(c.campaign_id, str(c.reason)) for c in decision.considered] == [
        ("z", "not_in_audience"), ("a", "sent"), ("b", "lower_priority")]


def test_priority_tie_goes_to_smaller_campaign_id() -> None:
    decision = run(event(FORUM, SATURDAY_2PM), profile(),
                   [campaign("spring"), campaign("autumn")], venue(FORUM))
    assert decision.chosen is not None and decision.chosen.campaign_id == "autumn"


def test_control_user_gets_the_next_campaign_and_a_control_entry() -> None:
    ledger = InMemoryLedger()
    decision = run(event(FORUM, SATURDAY_2PM), profile(),
                   [campaign("big", priority=9, control_pct=100), campaign("small")],
                   venue(FORUM), ledger=ledger)
    assert reasons(decision) == {"big": "held_out_control", "small": "sent"}
    assert decision.considered[0].outcome is Outcome.HELD_OUT
    assert [(e.campaign_id, e.control) for e in ledger.entries("u1")] == [
        ("big", True), ("small", False)]


def test_control_entries_count_for_campaign_cap_not_global_caps() -> None:
    ledger = InMemoryLedger()
    capped = {"control_pct": 100, "caps": {"per_user": {"count": 1, "period_s": 86400}}}
    first = run(event(FORUM, SATURDAY_2PM), profile(), [campaign("c1", **capped)],
                venue(FORUM), ledger=ledger)
    second = run(event(FORUM, SATURDAY_2PM + 60), profile(), [campaign("c1", **capped)],
                 venue(FORUM), ledger=ledger)
    assert reasons(first) == {"c1": "held_out_control"}
    assert reasons(second) == {"c1": "campaign_cap"}
    assert ledger.last_push_at("u1") is None


def test_template_error_falls_through_to_next_campaign() -> None:
    broken = {"variants": [{"id": "a", "title": "{{ user.__class__ }}", "body": "x"}]}
    decision = run(event(FORUM, SATURDAY_2PM), profile(),
                   [campaign("a1", priority=2, **broken), campaign("b1")], venue(FORUM))
    assert reasons(decision) == {"a1": "template_error", "b1": "sent"}
    assert decision.considered[0].outcome is Outcome.ERROR
    assert decision.considered[0].detail


def test_global_daily_cap_counts_pushes_of_all_campaigns() -> None:
    ledger = InMemoryLedger()
    pol = policy(max_per_day=2, min_gap_s=0)
    got = []
    for i, hour in enumerate(["10:00", "11:00", "12:00"]):
        decision = run(event(FORUM, at(f"2026-11-28 {hour}")), profile(),
                       [campaign(f"c{i}"), campaign(f"d{i}")], venue(FORUM), pol, ledger)
        got.append(reasons(decision))
    assert got == [
        {"c0": "sent", "d0": "lower_priority"},
        {"c1": "sent", "d1": "lower_priority"},
        {"c2": "global_cap", "d2": "global_cap"},
    ]


def test_campaign_cap_is_per_campaign() -> None:
    ledger = InMemoryLedger()
    capped = {"caps": {"per_user": {"count": 1, "period_s": 7 * 86400}}}
    pol = policy(min_gap_s=0)
    first = run(event(FORUM, SATURDAY_2PM), profile(), [campaign("a", **capped),
                campaign("b", **capped)], venue(FORUM), pol, ledger)
    second = run(event(FORUM, SATURDAY_2PM + 60), profile(), [campaign("a", **capped),
                 campaign("b", **capped)], venue(FORUM), pol, ledger)
    assert reasons(first) == {"a": "sent", "b": "lower_priority"}
    assert reasons(second) == {"a": "campaign_cap", "b": "sent"}


def test_weekly_cap_is_a_rolling_seven_days() -> None:
    ledger = InMemoryLedger([_entry("x", SATURDAY_2PM - 6 * 86400),
                             _entry("y", SATURDAY_2PM - 7 * 86400)])
    decision = run(event(FORUM, SATURDAY_2PM), profile(), [campaign()], venue(FORUM),
                   policy(max_per_week=1), ledger)
    assert reasons(decision) == {"c1": "global_cap"}
    ledger = InMemoryLedger([_entry("y", SATURDAY_2PM - 7 * 86400)])
    decision = run(event(FORUM, SATURDAY_2PM), profile(), [campaign()], venue(FORUM),
                   policy(max_per_week=1), ledger)
    assert reasons(decision) == {"c1": "sent"}


def test_daily_cap_follows_the_calendar_day_across_dst_in_helsinki() -> None:
    # 2026-03-29 is a 23-hour day in Helsinki (03:00 EET → 04:00 EEST).
    ledger = InMemoryLedger()
    pol = policy(max_per_day=1, min_gap_s=0, quiet_hours=None)
    timeline = ["2026-03-28 23:30", "2026-03-29 00:30", "2026-03-29 05:00",
                "2026-03-29 23:30", "2026-03-30 00:10"]
    got = [
        reasons(run(event(FORUM, at(t), user_id="u1"), profile(), [campaign()], venue(FORUM),
                    pol, ledger))["c1"]
        for t in timeline
    ]
    assert got == ["sent", "sent", "global_cap", "global_cap", "sent"]


def test_daily_cap_resets_at_the_users_midnight_not_the_venues() -> None:
    # 23:50 and 00:10 in Shanghai are 17:50 and 18:10 of one day at the Helsinki venue.
    ledger = InMemoryLedger()
    pol = policy(max_per_day=1, min_gap_s=0, quiet_hours=None)
    user = profile(attributes={"timezone": SHANGHAI})
    got = [
        reasons(run(event(FORUM, at(t, SHANGHAI)), user, [campaign()], venue(FORUM), pol,
                    ledger))["c1"]
        for t in ("2026-11-28 23:50", "2026-11-29 00:10", "2026-11-29 00:30")
    ]
    assert got == ["sent", "sent", "global_cap"]


def test_venue_timezone_is_local_time_when_user_has_none() -> None:
    user = profile(attributes={"timezone": None})
    # 23:30 in Helsinki is quiet; the user has no zone, so the venue's applies.
    decision = run(event(FORUM, at("2026-11-28 23:30")), user, [campaign()], venue(FORUM))
    assert reasons(decision) == {"c1": "quiet_hours"}


def test_cooldown_is_per_venue() -> None:
    ledger = InMemoryLedger()
    cooled = campaign("c1", venues={"kinds": ["mall"]}, caps={"cooldown_s": 3600})
    pol = policy(min_gap_s=0, max_per_day=None)
    steps = [(FORUM, "10:00"), (KLUUVI, "10:20"), (FORUM, "10:30"), (FORUM, "11:00"),
             (KLUUVI, "11:00")]
    got = [
        reasons(run(event(v, at(f"2026-11-28 {t}")), profile(), [cooled], venue(v), pol,
                    ledger))["c1"]
        for v, t in steps
    ]
    assert got == ["sent", "sent", "cooldown", "sent", "cooldown"]


def test_min_gap_between_any_two_pushes() -> None:
    ledger = InMemoryLedger([_entry("other", at("2026-11-28 10:00"))])
    got = [
        reasons(run(event(FORUM, at(f"2026-11-28 {t}")), profile(), [campaign()],
                    venue(FORUM), ledger=ledger, record=False))["c1"]
        for t in ("10:29", "10:30")
    ]
    assert got == ["min_gap", "sent"]


@pytest.mark.parametrize(
    ("local", "expected"),
    [("21:59", "sent"), ("22:00", "quiet_hours"), ("23:59", "quiet_hours"),
     ("00:00", "quiet_hours"), ("07:59", "quiet_hours"), ("08:00", "sent")],
)
def test_quiet_hours_wrap_midnight(local: str, expected: str) -> None:
    day = "2026-11-29" if local < "12:00" else "2026-11-28"
    decision = run(event(FORUM, at(f"{day} {local}")), profile(), [campaign()], venue(FORUM))
    assert reasons(decision) == {"c1": expected}


def test_fatigue_halves_the_daily_cap_until_a_click() -> None:
    ledger = InMemoryLedger()
    for _ in range(3):
        ledger.record_feedback("u1", FeedbackKind.IGNORED)
    ledger.record_feedback("u1", FeedbackKind.OPENED)  # opening is neutral
    pol = policy(max_per_day=3, min_gap_s=0)

    def at_hour(hour: str) -> str:
        return reasons(run(event(FORUM, at(f"2026-11-28 {hour}")), profile(), [campaign()],
                           venue(FORUM), pol, ledger))["c1"]

    assert at_hour("10:00") == "sent"  # halved cap: max(1, 3 // 2) = 1
    assert at_hour("11:00") == "fatigue"
    ledger.record_feedback("u1", FeedbackKind.CLICKED)
    assert [at_hour(h) for h in ("12:00", "13:00", "14:00")] == [
        "sent", "sent", "global_cap"]


@pytest.mark.parametrize(
    ("audience", "attrs", "extra", "expected"),
    [
        ({"age": {"min": 25, "max": 40}}, {"age": 34}, {}, "sent"),
        ({"age": {"min": 25, "max": 40}}, {"age": 41}, {}, "not_in_audience"),
        ({"age": {"min": 25}}, {"age": None}, {}, "not_in_audience"),
        ({"gender": ["f"]}, {"gender": "f"}, {}, "sent"),
        ({"gender": ["f"]}, {"gender": "m"}, {}, "not_in_audience"),
        ({"locales": ["fi"]}, {"locale": "fi-FI"}, {}, "sent"),
        ({"locales": ["zh-CN"]}, {"locale": "zh_CN"}, {}, "sent"),
        ({"locales": ["zh-TW"]}, {"locale": "zh-CN"}, {}, "not_in_audience"),
        ({"all_of_tags": ["a", "commuter"]}, {}, {"tags": ["a"], "scene_tags": ["commuter"]},
         "sent"),
        ({"none_of_tags": ["vip"]}, {}, {"tags": ["vip"]}, "not_in_audience"),
        ({"segments": ["new"]}, {}, {"first_seen": "2026-11-25T10:00:00+02:00"}, "sent"),
        ({"segments": ["dormant"]}, {}, {"first_seen": "2026-01-01T10:00:00+02:00",
                                         "last_active": "2026-10-01T10:00:00+03:00"}, "sent"),
        ({"segments": ["active"]}, {}, {"first_seen": "2026-01-01T10:00:00+02:00",
                                        "last_active": "2026-10-01T10:00:00+03:00"},
         "not_in_audience"),
    ],
)
def test_audience_rules(audience: dict[str, Any], attrs: dict[str, Any],
                        extra: dict[str, Any], expected: str) -> None:
    user = profile(attributes=attrs, **extra)
    decision = run(event(FORUM, SATURDAY_2PM), user, [campaign(audience=audience)],
                   venue(FORUM))
    assert reasons(decision) == {"c1": expected}


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        ({"start": "2026-12-01T00:00:00+02:00"}, "outside_schedule"),
        ({"end": "2026-11-28T14:00:00+02:00"}, "outside_schedule"),
        ({"end": "2026-11-28T14:00:01+02:00"}, "sent"),
        ({"days": ["Sa", "su"]}, "sent"),
        ({"days": ["mo", "tu", "we", "th", "fr"]}, "outside_schedule"),
        ({"hours": "10:00-21:00"}, "sent"),
        ({"hours": "20:00-02:00"}, "outside_schedule"),
    ],
)
def test_schedule_in_local_time(schedule: dict[str, Any], expected: str) -> None:
    decision = run(event(FORUM, SATURDAY_2PM), profile(), [campaign(schedule=schedule)],
                   venue(FORUM))
    assert reasons(decision) == {"c1": expected}


def test_opening_hours_from_osm_metadata_close_the_venue() -> None:
    # Sanomatalo: "Mo-Fr 07:00-22:00; Sa,Su 09:00-22:00" in its OSM metadata.
    place = venue(SANOMATALO)
    early = run(event(SANOMATALO, at("2026-11-28 08:30")), profile(), [campaign()], place)
    later = run(event(SANOMATALO, at("2026-11-28 09:00")), profile(), [campaign()], place)
    assert (reasons(early), reasons(later)) == ({"c1": "venue_closed"}, {"c1": "sent"})
    # The line says when, and when the venue opens (a Saturday: at 09:00).
    assert early.considered[0].detail == "08:30 Europe/Helsinki; opens 09:00"


def test_a_venue_closed_until_another_day_names_the_day_it_opens() -> None:
    # Christmas Eve to Boxing Day off; 27 December 2026 is a Sunday, so Monday 10:00.
    place = venue(FORUM, opening_hours="Mo-Fr 10:00-18:00; Dec 24-26 off")
    decision = run(event(FORUM, at("2026-12-24 12:00")), profile(), [campaign()], place)
    assert decision.considered[0].detail == "12:00 Europe/Helsinki; opens Mon 10:00"


def test_month_selected_hours_close_the_cathedral_on_winter_evenings_only() -> None:
    # Tuomiokirkko: "Jun-Aug: Su-Sa 09:00-24:00; Sep-May: Su-Sa 09:00-18:00" in its OSM
    # metadata. Two Thursdays at 20:00: the same weekday and minute, only the month differs.
    place, visitors = venue(TUOMIOKIRKKO), campaign(venues={"ids": [TUOMIOKIRKKO]})
    winter = run(event(TUOMIOKIRKKO, at("2026-01-15 20:00")), profile(), [visitors], place)
    summer = run(event(TUOMIOKIRKKO, at("2026-07-16 20:00")), profile(), [visitors], place)
    assert (reasons(winter), reasons(summer)) == ({"c1": "venue_closed"}, {"c1": "sent"})
    assert winter.notes == summer.notes == ()


@pytest.mark.parametrize(("local", "expected"), [
    ("2026-08-01 02:00", "sent"),  # the night of 31 Jul: summer hours, open until 03:00
    # The Sep-May rule governs all of 1 September: the summer night ends at midnight.
    ("2026-09-01 02:00", "venue_closed"),
    ("2026-06-01 02:00", "venue_closed"),  # the night of 31 May: spring hours end at 24:00
    ("2026-09-02 02:00", "venue_closed"),  # the night of 1 Sep: autumn hours
])
def test_night_past_midnight_continues_unless_a_later_rule_takes_the_day(
    local: str, expected: str
) -> None:
    place = venue(FORUM, opening_hours="Jun-Aug: 18:00-03:00; Sep-May: 18:00-24:00")
    decision = run(event(FORUM, at(local)), profile(), [campaign()], place,
                   policy(quiet_hours=None))
    assert reasons(decision) == {"c1": expected}


def test_campaign_may_ignore_opening_hours() -> None:
    place = venue(SANOMATALO)
    decision = run(event(SANOMATALO, at("2026-11-28 08:30")), profile(),
                   [campaign(schedule={"respect_opening_hours": False})], place)
    assert reasons(decision) == {"c1": "sent"}


@pytest.mark.parametrize(("hours", "local", "note"), [
    # ':' after days is not OSM: not understood.
    ("Mo-Fr: 10:00-21:00", "2026-11-29 14:00",
     f"opening_hours of venue {FORUM}: 'Mo-Fr: 10:00-21:00' is not OSM opening_hours "
     "syntax (at column 6); treated as open"),
    # Saturday's state is unknown, the rule's comment says why.
    ('Mo-Fr 10:00-21:00; Sa unknown "call ahead"', "2026-11-28 14:00",
     f"opening_hours of venue {FORUM} leave 14:00 Europe/Helsinki unknown (call ahead); "
     "treated as open"),
    # School holidays have no calendar: the rule is not applied, and the note says so.
    ("Mo-Su 10:00-21:00; SH off", "2026-11-29 14:00",
     f"opening_hours of venue {FORUM}: school holidays (SH) have no calendar; "
     "SH rules not applied"),
])
def test_opening_hours_that_cannot_be_applied_count_as_open_with_a_note(
    hours: str, local: str, note: str
) -> None:
    place = venue(FORUM, opening_hours=hours)
    decision = run(event(FORUM, at(local)), profile(), [campaign()], place)
    assert reasons(decision) == {"c1": "sent"}
    assert decision.notes == (note,)


@pytest.mark.parametrize(("local", "expected"), [
    ("2026-12-24 12:00", "venue_closed"), ("2026-12-27 12:00", "sent"),
])
def test_dates_in_opening_hours_close_the_venue(local: str, expected: str) -> None:
    place = venue(FORUM, opening_hours="Mo-Su 10:00-21:00; Dec 24-26 off")
    decision = run(event(FORUM, at(local)), profile(), [campaign()], place)
    assert reasons(decision) == {"c1": expected}
    assert decision.notes == ()


@pytest.mark.parametrize(("local", "metadata", "pol", "expected"), [
    # Christmas Day 2026 is a Friday: a Finnish public holiday, so "PH off" closes.
    ("2026-12-25 12:00", {"addr:country": "FI"}, {}, "venue_closed"),
    ("2026-12-23 12:00", {"addr:country": "FI"}, {}, "sent"),  # an ordinary Wednesday
    ("2026-12-25 12:00", {}, {"country": "FI"}, "venue_closed"),  # the tenant's country
    ("2026-12-25 12:00", {"addr:country": "CN"}, {"country": "FI"}, "sent"),  # venue wins
])
def test_public_holidays_follow_the_venues_country(
    local: str, metadata: dict[str, str], pol: dict[str, str], expected: str
) -> None:
    place = venue(FORUM, opening_hours="Mo-Su 10:00-21:00; PH off", metadata=metadata)
    decision = run(event(FORUM, at(local)), profile(), [campaign()], place, policy(**pol))
    assert reasons(decision) == {"c1": expected}
    assert decision.notes == ()


def test_holiday_hours_without_a_country_follow_the_venues_position() -> None:
    # No addr:country and no tenant country: Forum is in Helsinki, so Finnish holidays.
    place = venue(FORUM, opening_hours="Mo-Su 10:00-21:00; PH off", metadata={})
    decision = run(event(FORUM, at("2026-12-25 12:00")), profile(), [campaign()], place)
    assert reasons(decision) == {"c1": "venue_closed"}
    assert decision.notes == ()


def test_channel_is_first_reachable_not_refused_in_campaign_order() -> None:
    user = profile(channels=["inbox", "fcm", "email"], opt_outs=["fcm"])
    decision = run(event(FORUM, SATURDAY_2PM), user,
                   [campaign(channels=["sms", "fcm", "email", "inbox"])], venue(FORUM))
    assert decision.chosen is not None and decision.chosen.channel == "email"


def test_opt_out_of_everything() -> None:
    decision = run(event(FORUM, SATURDAY_2PM), profile(opt_outs=["*"]), [campaign()],
                   venue(FORUM))
    assert reasons(decision) == {"c1": "opted_out"}


@pytest.mark.parametrize(
    ("trigger", "kind", "dwell_s", "considered"),
    [
        ({"event": "enter"}, Kind.ENTER, None, True),
        ({"event": "enter"}, Kind.EXIT, 900.0, False),
        ({"event": "dwell"}, Kind.DWELL, 300.0, True),
        ({"event": "dwell", "dwell_s": 600}, Kind.DWELL, 300.0, False),
        ({"event": "dwell", "dwell_s": 600}, Kind.DWELL, 600.0, True),
        ({"event": "exit"}, Kind.EXIT, 1200.0, True),
    ],
)
def test_trigger_selects_the_campaigns_considered(
    trigger: dict[str, Any], kind: Kind, dwell_s: float | None, considered: bool
) -> None:
    decision = run(event(FORUM, SATURDAY_2PM, kind=kind, dwell_s=dwell_s), profile(),
                   [campaign(trigger=trigger)], venue(FORUM))
    assert bool(decision.considered) == considered


def test_plain_string_kind_is_accepted() -> None:
    ev = event(FORUM, SATURDAY_2PM)
    plain = type(ev)(**{**ev.__dict__, "kind": "enter"})
    decision = run(plain, profile(), [campaign()], venue(FORUM))
    assert decision.event == "enter" and reasons(decision) == {"c1": "sent"}


def test_mismatched_inputs_are_refused() -> None:
    index = CampaignIndex([campaign()])
    with pytest.raises(TriggerError):
        decide(event(FORUM, 0.0, user_id="u2"), profile(), index, venue(FORUM), policy(),
               InMemoryLedger(), 0.0)
    with pytest.raises(TriggerError):
        decide(event(KLUUVI, 0.0), profile(), index, venue(FORUM), policy(),
               InMemoryLedger(), 0.0)


def test_decide_does_not_write_the_ledger() -> None:
    ledger = InMemoryLedger()
    decide(event(FORUM, SATURDAY_2PM), profile(), CampaignIndex([campaign()]), venue(FORUM),
           policy(), ledger, SATURDAY_2PM)
    assert ledger.entries("u1") == ()



def test_decision_json_has_the_simulate_contract_shape() -> None:
    data = json.loads(_decide_row({"others": [{"id": "c0", "priority": 9,
                                               "audience": {"all_of_tags": ["x"]}}]}).to_json())
    assert {"user_id", "venue_id", "event", "at", "chosen", "considered"} <= data.keys()
    assert {"campaign_id", "variant_id", "title", "body", "channel"} <= data["chosen"].keys()
    assert [{k: c[k] for k in ("campaign_id", "outcome", "reason")}
            for c in data["considered"]] == [
        {"campaign_id": "c0", "outcome": "skipped", "reason": "not_in_audience"},
        {"campaign_id": "c1", "outcome": "sent", "reason": "sent"},
    ]
