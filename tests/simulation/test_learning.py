"""The simulator's users learn from their visits as the service's do: each EXIT updates
the profile the next decisions see (Beijing subway, © OpenStreetMap contributors)."""

from __future__ import annotations

from tests.decisions.builders import DONGDAN, GUOMAO, SHANGHAI, at, venue
from triggers.decisions import Profile
from triggers.presence_events import Confidence, EventKind, PresenceEvent
from triggers.simulation.engine import _Profiles

VENUES = {v: venue(v) for v in (GUOMAO, DONGDAN)}


def _exit(user: str, venue_id: str, start: float, length_s: float) -> PresenceEvent:
    return PresenceEvent(user, venue_id, EventKind.EXIT, start + length_s, f"{user}-{start}",
                         length_s, Confidence.HIGH, None, False)


def test_three_commuting_mornings_make_a_simulated_user_a_commuter() -> None:
    profiles = _Profiles([Profile(user_id="u1", tags=("foodie",))], [], {})
    for day in (2, 3, 4):  # Mon-Wed 2-4 Nov 2026, 08:00 in Beijing
        start = at(f"2026-11-{day:02d} 08:00", SHANGHAI)
        profiles.learn(_exit("u1", GUOMAO, start, 120), VENUES, start + 120, SHANGHAI)
        assert ("commuter" in profiles("u1").scene_tags) is (day == 4)
        profiles.learn(_exit("u1", DONGDAN, start + 1200, 120), VENUES, start + 1320,
                       SHANGHAI)
    learned = profiles("u1")
    assert learned.tags == ("foodie",) and learned.next_stops[GUOMAO].venue_id == DONGDAN
    assert learned.first_seen == at("2026-11-02 08:00", SHANGHAI)
    # ENTER and DWELL teach nothing; neither does a venue the scenario lacks.
    before = profiles("u1")
    assert before.last_active is not None
    enter = PresenceEvent("u1", GUOMAO, EventKind.ENTER, before.last_active + 9, "v9", None,
                          Confidence.HIGH, None, False)
    profiles.learn(enter, VENUES, before.last_active + 9, SHANGHAI)
    profiles.learn(_exit("u1", "osm:elsewhere", before.last_active + 60, 60), VENUES,
                   before.last_active + 120, SHANGHAI)
    assert profiles("u1") is before
