"""The presence rules as data: every threshold of the presence defaults, frozen.

A tenant gets one :class:`PresencePolicy` (built once from its validated settings and
passed to every call); venues may override the three rules that depend on the place
(:class:`VenueRules`). Nothing here reads configuration: callers build the policy.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from triggers.errors import TriggerError

DEFAULT_DWELL_S = 300
"""Dwell threshold when neither venue nor caller names one (matches ``venues.model``)."""


@dataclass(frozen=True, slots=True)
class VenueRules:
    """Per-venue overrides; ``None`` means "use the tenant's value".

    ``dwell_s`` is the venue's own dwell threshold (its ``dwell_s`` field);
    ``extra_dwell_s`` are further thresholds callers need (campaigns with their own
    ``dwell_s``). DWELL fires once per visit for each distinct value.
    """

    dwell_s: int | None = None
    extra_dwell_s: tuple[int, ...] = ()
    exit_margin_m: float | None = None
    silence_timeout_s: float | None = None


@dataclass(frozen=True, slots=True)
class PresencePolicy:
    """How pings become ENTER / DWELL / EXIT. Frozen; build one per tenant.

    Every default comes with the reason next to it. Units are in the names.
    """

    max_accuracy_m: float = 200.0
    """Pings reporting worse accuracy are ignored for transitions: a 200 m circle
    covers several venues of a city block, so it cannot say which one the user is in."""

    default_accuracy_m: float = 30.0
    """Accuracy assumed when a ping has none: a typical urban GPS/Wi-Fi fix, so an
    unknown ping is neither trusted like a 5 m fix nor discarded like a cell fix."""

    exit_margin_m: float = 30.0
    """EXIT needs the ping beyond the edge by max(this, accuracy): the asymmetric half
    of the hysteresis, so jitter around an edge never flaps enter/exit."""

    exit_confirm_pings: int = 2
    """Consecutive clearly-outside pings (with no centre-inside ping between) that end
    a visit: one 3.5-sigma outlier is rare, two in a row are ~1e-8 (see presence.py)."""

    silence_timeout_s: float = 900.0
    """A visit ends when no ping has placed the user inside for this long (the phone
    died or stopped reporting); the EXIT is dated at the last inside ping."""

    dwell_s: int = DEFAULT_DWELL_S
    """Dwell threshold for venues that name none: five minutes separates a visit from
    a walk-by."""

    enter_pair_window_s: float = 120.0
    """ENTER looks at the previous ping only when it is this recent; an older one says
    nothing about where the user is now, so a sparse pinger enters on one clear ping."""

    max_speed_mps: float = 70.0
    """A jump faster than this from the last accepted ping is a teleport (a bad fix):
    70 m/s (252 km/h) is above any train a user rides between two pings in a city."""

    teleport_confirm_pings: int = 3
    """After this many consecutive teleport rejections the ping is accepted as a real
    relocation (a flight, a fix after a long tunnel): outliers rarely repeat 3 times,
    and without this a user who really moved would be stuck until time caught up."""

    max_future_s: float = 120.0
    """Pings dated further than this past ``now`` are rejected: device clocks drift by
    seconds, not minutes; a future ping would make every real one look late."""

    stale_after_s: float = 600.0
    """Events whose evidence (the ping, or the timer's due time) is older than this
    when processed are recorded with ``stale=True`` and never pushed: ten minutes
    after the fact a location push is noise, while batched SDK uploads (iOS deferred
    updates, Android batching) usually arrive within a few minutes."""

    live_lag_s: float = 120.0
    """A user whose latest ping reached the engine at most this long after its ``ts`` is
    live: their timers (DWELL, silence EXIT) run on the wall clock, as they always have.
    Later than that the user is uploading history (an offline buffer emptied, a
    back-fill): until they catch up, their timers run on their own clock, ``last ts +
    wall time since that ping arrived`` — so a stay uploaded in several requests is one
    visit, its DWELL waits for the evidence (or the wall time) to reach the threshold,
    and its silence EXIT comes ``silence_timeout_s`` of wall time after the upload
    stopped, dated at the last inside ping as always. Two minutes, as ``max_future_s``:
    network latency and clock drift are seconds, an offline buffer minutes or hours."""

    venues: Mapping[str, VenueRules] = field(default_factory=lambda: MappingProxyType({}))
    """Per-venue overrides by venue id."""

    def __post_init__(self) -> None:
        for name in ("max_accuracy_m", "default_accuracy_m", "max_speed_mps",
                     "silence_timeout_s", "stale_after_s", "enter_pair_window_s"):
            value = getattr(self, name)
            if not value > 0:
                raise TriggerError(f"{name} must be > 0, not {value!r}")
        for name in ("exit_margin_m", "max_future_s", "live_lag_s"):
            value = getattr(self, name)
            if not value >= 0:
                raise TriggerError(f"{name} must be >= 0, not {value!r}")
        if self.exit_confirm_pings < 1 or self.teleport_confirm_pings < 1:
            raise TriggerError("exit_confirm_pings and teleport_confirm_pings must be >= 1")
        if self.dwell_s <= 0:
            raise TriggerError(f"dwell_s must be > 0, not {self.dwell_s!r}")
        for venue_id, rules in self.venues.items():
            for value in (rules.dwell_s, *rules.extra_dwell_s):
                if value is not None and value <= 0:
                    raise TriggerError(f"venue {venue_id!r}: dwell thresholds must be > 0")
        if not isinstance(self.venues, MappingProxyType):
            object.__setattr__(self, "venues", MappingProxyType(dict(self.venues)))

    def check_consistent(self) -> None:
        """Raise ``TriggerError`` when two thresholds contradict each other. Checked
        where a policy is set (the API, scenario files), not on every construction, so
        that a policy stored before the check still loads."""
        if self.default_accuracy_m > self.max_accuracy_m:
            raise TriggerError(
                f"default_accuracy_m ({self.default_accuracy_m:g}) is above max_accuracy_m "
                f"({self.max_accuracy_m:g}): every ping without an accuracy would be ignored")

    def with_venues(
        self,
        venue_dwell_s: Iterable[tuple[str, int]],
        dwell_thresholds: Mapping[str, tuple[int, ...]] | None = None,
    ) -> PresencePolicy:
        """A copy with each venue's own ``dwell_s`` and the callers' extra thresholds.

        ``venue_dwell_s``: (venue id, dwell_s) pairs, e.g. from the venue catalogue;
        ``dwell_thresholds``: more thresholds per venue id (campaigns). Existing margin
        and timeout overrides are kept.
        """
        merged = dict(self.venues)
        for venue_id, dwell_s in venue_dwell_s:
            merged[venue_id] = replace(merged.get(venue_id, VenueRules()), dwell_s=dwell_s)
        for venue_id, extra in (dwell_thresholds or {}).items():
            rules = merged.get(venue_id, VenueRules())
            merged[venue_id] = replace(rules, extra_dwell_s=tuple(extra))
        return replace(self, venues=MappingProxyType(merged))

    def dwell_thresholds(self, venue_id: str) -> tuple[int, ...]:
        """The venue's DWELL thresholds in seconds, ascending and distinct."""
        rules = self.venues.get(venue_id)
        if rules is None:
            return (self.dwell_s,)
        base = self.dwell_s if rules.dwell_s is None else rules.dwell_s
        return tuple(sorted({base, *rules.extra_dwell_s}))

    def exit_margin(self, venue_id: str, accuracy_m: float) -> float:
        """Metres beyond the edge a ping must be to count as clearly outside."""
        rules = self.venues.get(venue_id)
        margin = self.exit_margin_m if rules is None or rules.exit_margin_m is None \
            else rules.exit_margin_m
        return max(margin, accuracy_m)

    def silence_timeout(self, venue_id: str) -> float:
        """Seconds without an inside ping after which the venue's visit ends."""
        rules = self.venues.get(venue_id)
        if rules is None or rules.silence_timeout_s is None:
            return self.silence_timeout_s
        return rules.silence_timeout_s

    def widest_exit_margin_m(self) -> float:
        """The largest exit margin of any venue: how far the index must look outside."""
        margins = [r.exit_margin_m for r in self.venues.values() if r.exit_margin_m is not None]
        return max([self.exit_margin_m, *margins])
