"""A campaign's templates tried before it is stored: syntax, then a render for a few
sample users, so that a template that cannot parse or that goes past the render limits
is refused when it is written (422 naming ``variants[i].title`` / ``.body``), not found
out event after event as ``template_error``. The rich content is chosen for the same
samples: a picture left without alt text is refused on ``variants[i].image_alt``.

The samples cover what changes a template's path through its branches: the three age
bands (and no age), three locales, a user with nothing known, an item viewed, and a
public holiday (Christmas Day) beside an ordinary Monday. Pure: sample times are fixed
dates, not the clock.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from geo.latlng import LatLng
from triggers.decisions.content import (
    MAX_BODY_CHARS,
    MAX_TITLE_CHARS,
    ContentEngine,
    Rendered,
    TemplateFailure,
    TemplateProblem,
    build_context,
)
from triggers.decisions.models import (
    Attributes,
    Campaign,
    EventKind,
    Item,
    Profile,
    Variant,
)
from triggers.decisions.rich import RichContent, rich_of
from triggers.decisions.sandbox import RenderMeter
from triggers.decisions.segments import segment_of
from venues.model import Venue, VenueKind

_ZONE = ZoneInfo("Europe/Helsinki")

SAMPLE_PROFILES: Final = (
    Profile(user_id="sample-young", attributes=Attributes(
        age=19, gender="f", locale="zh-CN", first_name="小红", city="Beijing", country="CN")),
    Profile(user_id="sample-adult", tags=("commuter",), attributes=Attributes(
        age=34, gender="m", locale="en-US", first_name="Alex", city="Helsinki",
        occupation="engineer", country="US")),
    Profile(user_id="sample-senior", attributes=Attributes(
        age=70, locale="fi-FI", first_name="Aino", country="FI"),
        recently_viewed=Item(id="sample-item", name="Umbrella", price=19.9, currency="EUR")),
    Profile(user_id="sample-unknown"),
)
"""Who a preview renders for: each age band and no age, three locales, nothing known."""

SAMPLE_TIMES: Final = (
    datetime(2026, 12, 25, 10, 30, tzinfo=_ZONE),  # Christmas Day: a holiday to greet
    datetime(2026, 3, 2, 17, 45, tzinfo=_ZONE),  # an ordinary Monday evening
)

SAMPLE_VENUE: Final = Venue(
    id="sample-venue", name="Sample Mall", kind=VenueKind.MALL,
    center=LatLng(60.1699, 24.9384), radius_m=100.0, tags=("sample",),
    metadata={"addr:country": "FI"})

PREVIEW_BUDGET_RENDERS: Final = 4
"""A whole preview may spend the operations of this many renders at their limit: a
campaign of many variants cannot make its own check expensive."""


def preview_campaign(engine: ContentEngine, campaign: Campaign) -> list[TemplateProblem]:
    """The campaign's template problems: every field that does not compile, then every
    field whose render for a sample user went past the limits (its first such render).

    Uses ``engine``'s limits, never its clock: the answer is the same on every try.
    Bounded: at most :data:`PREVIEW_BUDGET_RENDERS` renders' worth of operations in all;
    past that, the field being tried is reported.
    """
    problems = engine.check(campaign)
    problems += _rich_problems(engine, campaign, {p.field for p in problems})
    failed = {p.field for p in problems}
    budget = engine.limits.max_operations * PREVIEW_BUDGET_RENDERS
    spent = 0
    for i, variant in enumerate(campaign.variants):
        for field_name, max_chars in (("title", MAX_TITLE_CHARS), ("body", MAX_BODY_CHARS)):
            path = f"variants[{i}].{field_name}"
            if path in failed:
                continue
            source: str = getattr(variant, field_name)
            for context in _contexts(engine, campaign, variant):
                if context is None:
                    continue
                meter = RenderMeter(engine.limits)
                reason = engine.trial(source, context, max_chars, meter)
                spent += meter.operations
                if reason is None and spent > budget:
                    reason = (f"checking the campaign's templates took more than "
                              f"{budget:,} operations in all; simplify them")
                if reason is not None:
                    problems.append(TemplateProblem(path, "limit", f"{reason} (sample user "
                                                    f"{context['user']['user_id']})"))
                    failed.add(path)
                    break
            if spent > budget:
                return problems
    return problems


def _rich_problems(
    engine: ContentEngine, campaign: Campaign, failed: set[str]
) -> list[TemplateProblem]:
    """The rich content each sample user would get: a picture without ``image_alt`` is
    described by the rendered title, so a title that renders empty for a sample user
    leaves the picture without alt text (which email needs) — reported on
    ``variants[i].image_alt`` (kind ``content``)."""
    problems = []
    for i, variant in enumerate(campaign.variants):
        if variant.image_alt is not None or f"variants[{i}].title" in failed:
            continue
        for profile, context in zip(SAMPLE_PROFILES, _contexts(engine, campaign, variant),
                                    strict=True):
            if context is None:
                continue
            rendered = engine.render(variant, context)
            if not isinstance(rendered, Rendered):
                continue  # the template checks report it
            rich = rich_of(variant, profile, rendered.title)
            if rich is not None and rich.image_url is not None and not rich.image_alt:
                problems.append(TemplateProblem(
                    f"variants[{i}].image_alt", "content",
                    f"the title renders empty for sample user {profile.user_id}, so the "
                    "picture would have no alt text; give image_alt"))
                break
    return problems


def _contexts(
    engine: ContentEngine, campaign: Campaign, variant: Variant
) -> Iterator[dict[str, Any] | None]:
    """The sample contexts; ``None`` for one the campaign's own data cannot build (a
    time out of range): that is not the template's problem."""
    event = campaign.trigger.event
    dwell_s = None
    if event is EventKind.DWELL:
        dwell_s = campaign.trigger.dwell_s or float(SAMPLE_VENUE.dwell_s)
    for n, profile in enumerate(SAMPLE_PROFILES):
        local = SAMPLE_TIMES[n % len(SAMPLE_TIMES)]
        try:
            context = _context(engine, campaign, variant, profile=profile, local=local,
                               dwell_s=dwell_s)
        except (ValueError, OverflowError, OSError):
            context = None
        yield context


def _context(engine: ContentEngine, campaign: Campaign, variant: Variant, *,
             profile: Profile, local: datetime, dwell_s: float | None) -> dict[str, Any]:
    now = local.timestamp()
    country = profile.attributes.country or "FI"
    return build_context(
        profile=profile,
        segment=str(segment_of(profile, now)),
        venue=SAMPLE_VENUE,
        event_kind=str(campaign.trigger.kind),
        event_at=now,
        dwell_s=dwell_s,
        visit_id="sample-visit",
        campaign=campaign,
        variant_id=variant.id,
        now=now,
        local=local,
        holiday=engine.holiday(country, local.date(), profile.content_locale),
        route=None,
    )


@dataclass(frozen=True, slots=True)
class SampleRender:
    """One variant rendered for one sample user (``title``/``body``), or why it could
    not be (``failure``)."""

    variant_id: str
    user_id: str
    locale: str | None
    age: int | None
    local_time: str
    title: str
    body: str
    failure: str | None
    rich: RichContent | None = None
    """The picture, link and buttons chosen for this person (``None``: plain text)."""


def render_samples(engine: ContentEngine, campaign: Campaign) -> list[SampleRender]:
    """Every variant of ``campaign`` rendered for every sample user, as a person
    previewing the campaign reads it (same contexts as :func:`preview_campaign`).
    Pure; bounded by ``engine``'s render limits per render."""
    out: list[SampleRender] = []
    for variant in campaign.variants:
        for n, context in enumerate(_contexts(engine, campaign, variant)):
            profile = SAMPLE_PROFILES[n]
            local = SAMPLE_TIMES[n % len(SAMPLE_TIMES)].isoformat(timespec="minutes")
            if context is None:
                continue
            rendered = engine.render(variant, context)
            rich = (None if isinstance(rendered, TemplateFailure)
                    else rich_of(variant, profile, rendered.title))
            out.append(SampleRender(
                variant_id=variant.id, user_id=profile.user_id,
                locale=profile.attributes.locale, age=profile.attributes.age,
                local_time=local,
                title="" if isinstance(rendered, TemplateFailure) else rendered.title,
                body="" if isinstance(rendered, TemplateFailure) else rendered.body,
                failure=rendered.message if isinstance(rendered, TemplateFailure) else None,
                rich=rich))
    return out
