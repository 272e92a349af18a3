"""Profiles learn from visits: behaviour stats, scene tags, usual next stops (Beijing
subway stations, © OpenStreetMap contributors)."""

from __future__ import annotations

from tests.decisions.builders import (
    DONGDAN,
    FORUM,
    GUOMAO,
    SHANGHAI,
    Kind,
    at,
    campaign,
    event,
    profile,
    run,
    venue,
)
from triggers.decisions import NextStop, Profile
from triggers.decisions.learning import learn_profile, visits_from_events
from triggers.decisions.segments import Visit, segment_of

VENUES = {v: venue(v) for v in (GUOMAO, DONGDAN, FORUM)}


def _commutes(days: int, first_day: int = 2) -> list[Visit]:
    """Weekday mornings (2 Nov 2026 is a Monday): into Guomao, then on to Dongdan."""
    visits = []
    for day in range(first_day, first_day + days):
        start = at(f"2026-11-{day:02d} 08:00", SHANGHAI)
        visits += [Visit(GUOMAO, "transit_station", start, start + 120),
                   Visit(DONGDAN, "transit_station", start + 1200, start + 1320)]
    return visits


def test_exits_become_visits_and_other_events_do_not() -> None:
    t = at("2026-11-02 08:00", SHANGHAI)
    events = [event(GUOMAO, t, Kind.ENTER, visit_id="v1"),
              event(GUOMAO, t + 300, Kind.DWELL, visit_id="v1", dwell_s=300.0),
              event(GUOMAO, t + 400, Kind.EXIT, visit_id="v1", dwell_s=400.0),
              event("osm:gone", t + 900, Kind.EXIT, visit_id="v2", dwell_s=60.0)]  # deleted
    assert visits_from_events(events, VENUES) == [
        Visit(GUOMAO, "transit_station", t, t + 400)]


def test_three_commuting_mornings_earn_commuter_and_the_usual_next_stop() -> None:
    now = at("2026-11-04 09:00", SHANGHAI)
    learned = learn_profile(profile("u1"), _commutes(3), VENUES, now=now, tz=SHANGHAI)
    assert learned.scene_tags == ("commuter",)
    assert learned.next_stops[GUOMAO] == NextStop(
        venue_id=DONGDAN, name="东单", line_ids=("line-1", "line-5"), trips=3)
    assert learned.first_seen == _commutes(3)[0].start
    assert learned.last_active == _commutes(3)[-1].end
    # Two mornings are not a commuting habit yet (the route needs two trips); one
    # morning teaches neither.
    two = learn_profile(profile("u1"), _commutes(2), VENUES, now=now, tz=SHANGHAI)
    assert two.scene_tags == () and two.next_stops[GUOMAO].trips == 2
    one = learn_profile(profile("u1"), _commutes(1), VENUES, now=now, tz=SHANGHAI)
    assert one.scene_tags == () and one.next_stops == {}


def test_a_lapsed_habit_loses_its_tag_but_tags_no_rule_governs_stay() -> None:
    tagged = Profile(user_id="u1", scene_tags=("commuter", "festival_goer"))
    a_month_later = at("2026-12-10 09:00", SHANGHAI)
    learned = learn_profile(tagged, _commutes(3), VENUES, now=a_month_later, tz=SHANGHAI)
    assert learned.scene_tags == ("festival_goer",)


def test_behaviour_stats_only_widen_and_nothing_new_returns_the_same_profile() -> None:
    visits = _commutes(1)
    known = Profile(user_id="u1", first_seen=visits[0].start - 86_400,
                    last_active=visits[-1].end + 60)
    same = learn_profile(known, visits, VENUES, now=visits[-1].end, tz=SHANGHAI)
    assert same is known
    assert learn_profile(known, [], VENUES, now=0.0, tz=SHANGHAI) is known


def test_a_returning_user_is_dormant_until_their_visit_ends() -> None:
    """The visit that brings a user back is decided as dormant (a welcome-back offer
    can target it); once it ends the profile is active again."""
    back = at("2026-11-02 08:00", SHANGHAI)
    returning = profile("u1", first_seen=back - 200 * 86_400,
                        last_active=back - 60 * 86_400, attributes={"timezone": SHANGHAI})
    assert str(segment_of(returning, back)) == "dormant"
    welcome = campaign("welcome-back", venues={"ids": [GUOMAO]},
                       audience={"segments": ["dormant"]}, trigger={"event": "enter"})
    decision = run(event(GUOMAO, back, Kind.ENTER), returning, [welcome], VENUES[GUOMAO],
                   now=back)
    assert decision.chosen is not None and decision.chosen.campaign_id == "welcome-back"
    learned = learn_profile(returning, _commutes(1), VENUES, now=back + 200, tz=SHANGHAI)
    assert str(segment_of(learned, back + 200)) == "active"
