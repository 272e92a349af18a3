"""What a user's visits teach their profile: behaviour stats, scene tags, usual next stops.

Pure: the caller hands over the visit history (the service reads it from its stored
events, the simulator keeps it as it goes) and stores the profile it gets back.

- ``first_seen`` — the earlier of the profile's and the first visit's start;
- ``last_active`` — the later of the profile's and the last visit's end, so a user who
  comes back after a month is still ``dormant`` while their first new visit is decided
  (the profile is learned when a visit ends, after its decisions);
- ``scene_tags`` — the tags the scene rules govern (``commuter``, ``shopper``) are
  recomputed from the history, so a habit that stopped loses its tag; scene tags no rule
  produces (set through the API) are kept;
- ``next_stops`` — the usual next station learned from trips between stations replaces
  what the profile said for that station; other stations' entries are kept.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from triggers.decisions.events import EventLike, kind_of
from triggers.decisions.models import Profile
from triggers.decisions.routes import learn_next_stops
from triggers.decisions.segments import DEFAULT_SCENE_RULES, SceneRule, Visit, derive_scene_tags
from venues.model import Venue

HISTORY_EVENTS = 1_000
"""Events of a user the service reads to learn from (about 300 visits: more than the
longest scene rule's 30-day window holds for any plausible user)."""


def visits_from_events(events: Iterable[EventLike], venues: Mapping[str, Venue]) -> list[Visit]:
    """Finished visits from presence events (a visit is finished by its EXIT, which
    carries its length), oldest first. Visits of venues ``venues`` lacks are left out
    (their kind is unknown)."""
    out: list[Visit] = []
    for event in events:
        venue_id = event.venue_id
        if kind_of(event) != "exit" or event.dwell_s is None or venue_id is None:
            continue
        venue = venues.get(venue_id)
        if venue is None:
            continue
        out.append(Visit(venue_id, str(venue.kind), event.at - event.dwell_s, event.at))
    return sorted(out, key=lambda v: (v.start, v.venue_id))


def learn_profile(
    profile: Profile,
    visits: Sequence[Visit],
    venues: Mapping[str, Venue],
    *,
    now: float,
    tz: str,
    rules: Sequence[SceneRule] = DEFAULT_SCENE_RULES,
) -> Profile:
    """``profile`` updated from ``visits`` (see the module docstring); the same object
    when nothing changes. ``tz``: the zone the scene rules' hours are read in."""
    if not visits:
        return profile
    first = min(v.start for v in visits)
    last = max(v.end for v in visits)
    first_seen = first if profile.first_seen is None else min(profile.first_seen, first)
    last_active = last if profile.last_active is None else max(profile.last_active, last)
    governed = {rule.tag for rule in rules}
    kept = [t for t in profile.scene_tags if t not in governed]
    scene_tags = tuple(sorted({*kept, *derive_scene_tags(visits, tz, now, rules)}))
    next_stops = {**profile.next_stops, **learn_next_stops(visits, venues)}
    if (first_seen, last_active, scene_tags, next_stops) == (
            profile.first_seen, profile.last_active, tuple(sorted(profile.scene_tags)),
            profile.next_stops):
        return profile
    return profile.model_copy(update={
        "first_seen": first_seen, "last_active": last_active, "scene_tags": scene_tags,
        "next_stops": next_stops,
    })
