"""The simulated response: whether a simulated user opens and clicks a push. Pure.

A scenario may give its users **latent traits** (what the service never sees) and a
**response model** (how those traits turn a push into an open and a click). With them,
``simulate`` draws an open and a click for every push, feeds them back as the service's
feedback would (the ledger's ignored streak, and the :class:`FeedbackBook` that Thompson
sampling, channel choice and learned caps read), and reports opens, clicks and CTR per
policy, campaign and variant with Wilson intervals, and the CTR lift of the scenario's
policy over a compared one run on the same events (``compare``).

The model, for a push on ``channel`` at the user's local ``hour`` with content ``tags``,
after ``recent`` pushes to the user in the last ``fatigue_window_s``:

    P(open)  = habit(channel) * (1 if hour in active_hours else inactive_factor)
                              * exp(-fatigue * recent)
    P(click | open) = max(interest[tag] for tag in tags), or default_interest when the
                      user has no interest in any of them

``habit(channel)`` is the user's ``channel_habits[channel]``, else the model's
``open_rate``. The two draws are uniform numbers from SHA-256 of (scenario seed, user,
delivery key), so a run is reproducible, and two compared worlds pushing the same campaign
at the same event draw the same numbers (common random numbers: the lift's noise is the
policies' difference, not the dice). Feedback arrives with the push (no delay): a push
not opened is ``ignored``, one opened is ``opened``, one clicked is ``clicked``.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from triggers.decisions.experiments import unit_hash
from triggers.decisions.hours import in_window, parse_window
from triggers.decisions.models import CHANNELS, Campaign, LocalWindow, Tag
from triggers.decisions.stats import Z_95, Proportion, two_proportion_z, wilson

Chance = Annotated[float, Field(ge=0, le=1)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class Traits(_Frozen):
    """A user's latent traits: what they would do, which the service has to learn."""

    interests: dict[Tag, Chance] = Field(default={}, max_length=256)
    """Content tag → the chance of clicking an opened push about it (true interest)."""
    active_hours: tuple[LocalWindow, ...] = Field(default=(), max_length=24)
    """Local windows (``"09:00-12:00"``, may wrap midnight) when the user reads pushes;
    empty = all day. Local time is the user's ``timezone`` attribute, else the scenario's."""
    channel_habits: dict[str, Chance] = Field(default={}, max_length=len(CHANNELS))
    """Channel → the chance of opening a push on it (while active and not tired); a channel
    not named opens at the model's ``open_rate``."""
    fatigue: float = Field(default=0.0, ge=0, le=10)
    """Each push received in the last ``fatigue_window_s`` multiplies the chance of opening
    by ``exp(-fatigue)``: 0 never tires, 0.7 halves it per recent push."""


class ResponseModel(_Frozen):
    """``response`` in a scenario: the model's knobs, and whose traits are which."""

    open_rate: Chance = 0.3
    """The chance of opening on a channel the user's ``channel_habits`` do not name."""
    inactive_factor: Chance = 0.2
    """Multiplies the chance of opening outside the user's ``active_hours``."""
    fatigue_window_s: float = Field(default=86_400.0, gt=0)
    """How far back the pushes that tire a user reach (a day)."""
    default_interest: Chance = 0.05
    """The chance of clicking an opened push whose tags the user has no interest in."""
    content_tags: dict[str, tuple[Tag, ...]] = Field(default={}, max_length=4096)
    """What a push is about: ``campaign_id`` → tags, or ``campaign_id/variant_id`` → tags
    (a variant's entry replaces its campaign's). A push with no tags is clicked at
    ``default_interest``."""
    traits: Traits = Traits()
    """The traits of users that neither ``users`` nor their crowd's ``traits`` give."""
    users: dict[str, Traits] = Field(default={}, max_length=100_000)
    """User id → traits (for the scenario's named users)."""
    policy_name: str = Field(default="scenario", min_length=1, max_length=64)
    """What the report calls the scenario's own policy."""


class Compare(_Frozen):
    """``compare`` in a scenario: a second policy run on the same events (a paired world)."""

    name: str = Field(min_length=1, max_length=64)
    policy: dict[str, Any] = {}
    """Tenant policy keys that differ from the scenario's (``learned_caps: false``)."""
    campaigns: tuple[Campaign, ...] | None = None
    """The compared world's campaigns; ``None`` = the scenario's."""


@dataclass(frozen=True, slots=True)
class Response:
    """One push's drawn response and the chances it was drawn with."""

    opened: bool
    clicked: bool
    p_open: float
    p_click: float


def tags_of(model: ResponseModel, campaign_id: str, variant_id: str) -> tuple[str, ...]:
    """The content tags of a push (variant entry, else campaign entry, else none)."""
    tags = model.content_tags.get(f"{campaign_id}/{variant_id}")
    return tags if tags is not None else model.content_tags.get(campaign_id, ())


def open_chance(model: ResponseModel, traits: Traits, channel: str, minute: int,
                recent: int) -> float:
    """P(open) of the module docstring; ``minute`` is the local minute of the day."""
    habit = traits.channel_habits.get(channel, model.open_rate)
    active = not traits.active_hours or any(
        in_window(parse_window(w), minute) for w in traits.active_hours)
    return habit * (1.0 if active else model.inactive_factor) * math.exp(-traits.fatigue * recent)


def click_chance(model: ResponseModel, traits: Traits, tags: tuple[str, ...]) -> float:
    """P(click | open) of the module docstring."""
    known = [traits.interests[t] for t in tags if t in traits.interests]
    return max(known) if known else model.default_interest


def respond(
    model: ResponseModel, traits: Traits, *, seed: int, user_id: str, delivery_key: str,
    channel: str, tags: tuple[str, ...], minute: int, recent: int,
) -> Response:
    """Draw the user's response to one push (deterministic in seed, user and key)."""
    p_open = open_chance(model, traits, channel, minute, recent)
    p_click = click_chance(model, traits, tags)
    opened = unit_hash("open", str(seed), user_id, delivery_key) < p_open
    clicked = opened and unit_hash("click", str(seed), user_id, delivery_key) < p_click
    return Response(opened, clicked, p_open, p_click)


# --------------------------------------------------------------------------- report


@dataclass
class ResponseTally:
    """One world's pushes, opens and clicks, by campaign and variant."""

    pushes: Counter[tuple[str, str]] = field(default_factory=Counter)
    opens: Counter[tuple[str, str]] = field(default_factory=Counter)
    clicks: Counter[tuple[str, str]] = field(default_factory=Counter)

    def add(self, campaign_id: str, variant_id: str, response: Response) -> None:
        key = (campaign_id, variant_id)
        self.pushes[key] += 1
        self.opens[key] += response.opened
        self.clicks[key] += response.clicked

    def totals(self) -> tuple[int, int, int]:
        """(pushes, opens, clicks) over every campaign."""
        return (sum(self.pushes.values()), sum(self.opens.values()),
                sum(self.clicks.values()))

    def report(self) -> dict[str, Any]:
        pushes, opens, clicks = self.totals()
        out = _rates(pushes, opens, clicks)
        campaigns: dict[str, Any] = {}
        for campaign_id in sorted({c for c, _ in self.pushes}):
            keys = sorted(k for k in self.pushes if k[0] == campaign_id)
            entry = _rates(*(sum(counter[k] for k in keys)
                             for counter in (self.pushes, self.opens, self.clicks)))
            entry["variants"] = {v: _rates(self.pushes[(c, v)], self.opens[(c, v)],
                                           self.clicks[(c, v)]) for c, v in keys}
            campaigns[campaign_id] = entry
        out["campaigns"] = campaigns
        return out


def _interval(p: Proportion) -> dict[str, float | None]:
    return {"rate": _round(p.rate), "low": _round(p.low), "high": _round(p.high)}


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def _rates(pushes: int, opens: int, clicks: int) -> dict[str, Any]:
    """Counts with the open rate and CTR (clicks per push), Wilson 95 % intervals."""
    return {"pushes": pushes, "opens": opens, "clicks": clicks,
            "open_rate": _interval(wilson(opens, pushes)),
            "ctr": _interval(wilson(clicks, pushes))}


def ratio_interval(x1: int, n1: int, x2: int, n2: int,
                   z: float = Z_95) -> tuple[float, float, float] | None:
    """The ratio of two proportions ``(x1/n1) / (x2/n2)`` and its 95 % interval by the
    log method (Katz): ``exp(ln r ± z * sqrt(1/x1 - 1/n1 + 1/x2 - 1/n2))``; None when a
    group is empty or has no success (the ratio or its log is undefined)."""
    if min(x1, n1, x2, n2) <= 0:
        return None
    ratio = (x1 / n1) / (x2 / n2)
    se = math.sqrt(1 / x1 - 1 / n1 + 1 / x2 - 1 / n2)
    return ratio, ratio * math.exp(-z * se), ratio * math.exp(z * se)


def lift_report(name: str, tally: ResponseTally, other_name: str,
                other: ResponseTally) -> dict[str, Any]:
    """The CTR lift of ``name`` over ``other_name``: ``ctr / other_ctr - 1``, its 95 %
    interval and the two-proportion z-test."""
    n1, _, x1 = tally.totals()
    n2, _, x2 = other.totals()
    ratio = ratio_interval(x1, n1, x2, n2)
    test = two_proportion_z(x1, n1, x2, n2)
    return {
        "policy": name, "over": other_name,
        "ctr": _round(x1 / n1 if n1 else None), "other_ctr": _round(x2 / n2 if n2 else None),
        "lift": None if ratio is None else _round(ratio[0] - 1),
        "low": None if ratio is None else _round(ratio[1] - 1),
        "high": None if ratio is None else _round(ratio[2] - 1),
        "z": None if test is None else _round(test[0]),
        "p_value": None if test is None else _round(test[1]),
    }


def response_lines(report: dict[str, Any]) -> list[str]:
    """The readable form of a response report (``simulate`` without ``--json``)."""
    lines = ["Simulated response (CTR = clicks per push, 95 % Wilson interval):"]
    for name, policy in report["policies"].items():
        lines.append(f"  {name}: {_ctr_text(policy)}, opens {policy['opens']}")
        for campaign_id, campaign in policy["campaigns"].items():
            lines.append(f"    {campaign_id}: {_ctr_text(campaign)}")
            for variant_id, variant in campaign["variants"].items():
                lines.append(f"      {variant_id}: {_ctr_text(variant)}")
    lift = report.get("lift")
    if lift is not None:
        if lift["lift"] is None:
            lines.append(f"  lift of {lift['policy']} over {lift['over']}: undefined "
                         "(a policy has no pushes or no clicks)")
        else:
            lines.append(
                f"  CTR lift of {lift['policy']} over {lift['over']}: {lift['lift']:+.1%} "
                f"(95 % CI {lift['low']:+.1%} to {lift['high']:+.1%}, p = {lift['p_value']})")
    return lines


def _ctr_text(entry: dict[str, Any]) -> str:
    ctr = entry["ctr"]
    if ctr["rate"] is None:
        return f"{entry['pushes']} pushes, no CTR"
    return (f"{entry['clicks']}/{entry['pushes']} clicked, CTR {ctr['rate']:.1%} "
            f"[{ctr['low']:.1%}, {ctr['high']:.1%}]")
