"""Campaign rules compiled once per index, for ``decide``'s per-candidate checks.

An event has ~30 candidate campaigns, so ``decide`` cannot afford to re-read a campaign's
pydantic models, re-parse its windows or re-build set objects per candidate. The index
compiles each active campaign once into a :class:`CampaignRules`: audience tags as integer
bit masks over the index's tag vocabulary (:class:`TagBits`), age bounds, the locales as
normalised sets, the schedule as numbers, the caps, the arms.

It also remembers the decision lines whose text depends only on the campaign and a bounded
fact about the user (an age, a locale, the missing tags, the winner of an arbitration):
lines are immutable values, so the same :class:`Considered` can appear in any number of
decisions. Lines naming the local minute (quiet hours, hours of the schedule) are kept in
a small separate memo, good for the minute at hand; lines naming seconds (cooldown, min
gap) are built per decision. These memos are pure (same key, same line), so the index
stays a value that can be shared and swapped whole.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import Final

from triggers.decisions.hours import parse_window
from triggers.decisions.models import Campaign, Profile, Style, Variant, norm_locale
from triggers.decisions.records import Considered, Outcome, Reason

MAX_MEMO = 1024
"""Entries a memo keeps before it starts over. The keys are bounded by the data (ages,
locales, tag combinations of a tenant's users), so this is only a guard against a
pathological tenant; starting over loses nothing but time."""
MAX_CLOCK_LINES = 64
"""Lines naming a local minute (quiet hours, schedule hours) a campaign keeps: events come
in time order, so the current minute's lines are the ones worth keeping."""


class TagBits:
    """The audience tags of an index, one bit each; a user's tags as the mask of those bits.

    A user's tags outside the vocabulary match no audience criterion, so they get no bit.
    """

    __slots__ = ("_bits", "_users")

    def __init__(self) -> None:
        self._bits: dict[str, int] = {}
        self._users: dict[tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]], int] = {}

    def add(self, tags: Iterable[str]) -> int:
        """The mask of ``tags``, giving a new bit to each tag not seen before."""
        mask = 0
        for tag in tags:
            bit = self._bits.get(tag)
            if bit is None:
                bit = self._bits[tag] = 1 << len(self._bits)
            mask |= bit
        return mask

    def of_user(self, profile: Profile) -> int:
        """The mask of the user's interest, scene and learned tags (memoised by the three
        tuples)."""
        key = (profile.tags, profile.scene_tags, tuple(t.tag for t in profile.learned_tags))
        mask = self._users.get(key)
        if mask is None:
            if len(self._users) >= MAX_MEMO:
                self._users.clear()
            bits = self._bits
            mask = 0
            for tag in (*profile.tags, *profile.scene_tags, *key[2]):
                mask |= bits.get(tag, 0)
            self._users[key] = mask
        return mask


class CampaignRules:
    """An active campaign as the numbers and sets ``decide`` checks, and its line memo.

    Attributes mirror the campaign's rules; a criterion the campaign does not use is
    ``0``, ``None`` or empty, and ``audience_free`` / ``schedule_free`` say a whole group
    is unused so that the common campaign skips it in one test.
    """

    __slots__ = (
        "_renditions",
        "all_of",
        "any_of",
        "arms",
        "audience_free",
        "auto_channel",
        "campaign",
        "cap_count",
        "cap_period_s",
        "channels",
        "checks_age",
        "clock_lines",
        "control_pct",
        "cooldown_s",
        "end",
        "genders",
        "id",
        "lines",
        "locale_exact",
        "locale_language",
        "locales",
        "max_age",
        "min_age",
        "none_of",
        "rank",
        "respects_opening_hours",
        "schedule_free",
        "segments",
        "stale_line",
        "start",
        "thompson",
        "weekdays",
        "window",
    )

    def __init__(self, campaign: Campaign, tags: TagBits, rank: int) -> None:
        self.campaign: Final = campaign
        self.id: Final = campaign.id
        self.rank: Final = rank
        """Position in arbitration order among the index's active campaigns."""
        audience = campaign.audience
        self.all_of: Final = tags.add(audience.all_of_tags)
        self.any_of: Final = tags.add(audience.any_of_tags)
        self.none_of: Final = tags.add(audience.none_of_tags)
        self.checks_age: Final = audience.age is not None
        self.min_age: Final = None if audience.age is None else audience.age.min
        self.max_age: Final = None if audience.age is None else audience.age.max
        self.genders: Final = audience.gender
        self.locales: Final = audience.locales
        wanted = [norm_locale(item) for item in audience.locales]
        self.locale_exact: Final = frozenset(w for w in wanted if w is not None)
        # ``zh`` also matches ``zh-CN``; ``zh-CN`` matches only itself.
        self.locale_language: Final = frozenset(w for w in wanted if w is not None and "-" not in w)
        self.segments: Final = frozenset(str(s) for s in audience.segments)
        self.audience_free: Final = not (
            self.all_of
            or self.any_of
            or self.none_of
            or audience.age is not None
            or self.genders
            or self.locales
            or self.segments
        )
        schedule = campaign.schedule
        self.start: Final = schedule.start
        self.end: Final = schedule.end
        self.weekdays: Final = schedule.weekdays if schedule.days else None
        self.window: Final = None if schedule.hours is None else parse_window(schedule.hours)
        self.schedule_free: Final = (
            self.start is None
            and self.end is None
            and self.weekdays is None
            and self.window is None
        )
        self.respects_opening_hours: Final = schedule.respect_opening_hours
        self.channels: Final = campaign.channels
        cap = campaign.caps.per_user
        self.cap_count: Final = None if cap is None else cap.count
        self.cap_period_s: Final = 0.0 if cap is None else cap.period_s
        self.cooldown_s: Final = campaign.caps.cooldown_s
        self.control_pct: Final = campaign.control_pct
        self.arms: Final = campaign.arms
        self.thompson: Final = campaign.optimize == "thompson"
        self.auto_channel: Final = campaign.channel_choice == "auto"
        self.stale_line: Final = Considered(self.id, Outcome.SKIPPED, Reason.STALE_EVENT)
        self.lines: dict[Hashable, Considered] = {}
        """The remembered lines by key (see :meth:`remember`)."""
        self.clock_lines: dict[tuple[Reason, str], Considered] = {}
        """Lines naming a local minute; see :meth:`remember_clock`."""
        self._renditions: dict[tuple[str, str | None, Style], Variant] = {}

    def remember(
        self,
        key: Hashable,
        reason: Reason,
        detail: str | None = None,
        *,
        outcome: Outcome = Outcome.SKIPPED,
        variant_id: str | None = None,
    ) -> Considered:
        """Build the line for ``key`` and keep it; ``key`` must determine every field."""
        if len(self.lines) >= MAX_MEMO:
            self.lines.clear()
        line = self.lines[key] = Considered(self.id, outcome, reason, variant_id, detail)
        return line

    def remember_clock(self, key: tuple[Reason, str], detail: str) -> Considered:
        """Build and keep a skip line naming a local minute; ``key`` is (reason, a text
        that determines ``detail``)."""
        if len(self.clock_lines) >= MAX_CLOCK_LINES:
            self.clock_lines.clear()
        line = self.clock_lines[key] = Considered(self.id, Outcome.SKIPPED, key[0], None, detail)
        return line

    def rendition(self, arm: str, locale: str | None, style: Style) -> Variant | None:
        """The remembered ``pick_rendition`` result for these inputs, if any."""
        return self._renditions.get((arm, locale, style))

    def remember_rendition(
        self, arm: str, locale: str | None, style: Style, variant: Variant
    ) -> None:
        if len(self._renditions) >= MAX_MEMO:
            self._renditions.clear()
        self._renditions[arm, locale, style] = variant
