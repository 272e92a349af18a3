"""Push content: sandboxed templates, variant renditions by locale and age band, context.

Templates are Jinja2 in an ``ImmutableSandboxedEnvironment`` (a ``SandboxedEnvironment``
that also refuses to mutate lists and dicts) with ``StrictUndefined``: a template sees only
the whitelisted context of :func:`build_context`, ``_``-prefixed attributes
(``user.__class__``) are refused, an unknown variable is an error unless the template says
``{{ x | default("...") }}``, and ``*`` / ``**`` cannot build huge values. Any failure is a
:class:`TemplateFailure`; the decision then sends nothing for that campaign and records
``template_error``. Output is plain text (no autoescape): channels escape for their medium.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import holidays
from jinja2 import StrictUndefined, Template, TemplateError
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from triggers.decisions.models import Campaign, Profile, Style, Variant, norm_locale
from triggers.decisions.routes import RouteTip
from venues.model import Venue

MAX_TITLE_CHARS = 256
MAX_BODY_CHARS = 4096
"""Longer output is an error, not a truncation: a cut-off offer reads as a bug to the user."""
_MAX_REPEAT = 10_000
_MAX_EXPONENT = 64

YOUNG_BELOW = 25
SENIOR_FROM = 55


def age_band(age: int | None) -> Style:
    """Style for an age: under 25 ``casual``, 25–54 ``neutral``, 55 and over ``formal``.

    Unknown age is ``neutral``, the tone that offends no band.
    """
    if age is None:
        return Style.NEUTRAL
    if age < YOUNG_BELOW:
        return Style.CASUAL
    return Style.FORMAL if age >= SENIOR_FROM else Style.NEUTRAL


def time_of_day(local: datetime) -> str:
    """``morning`` 05:00–11:59, ``afternoon`` 12:00–16:59, ``evening`` 17:00–20:59,
    ``night`` 21:00–04:59, by the local clock."""
    hour = local.hour
    if 5 <= hour < 12:
        return "morning"
    if 12 <= hour < 17:
        return "afternoon"
    if 17 <= hour < 21:
        return "evening"
    return "night"


def pick_rendition(
    variants: Sequence[Variant], arm: str, locale: str | None, style: Style
) -> Variant:
    """The rendition of ``arm`` for a user's locale and style.

    Locale first (a message in the wrong language is worse than one in the wrong tone):
    exact locale, then the bare language (``zh`` for ``zh-CN``), then another region of the
    language (``zh-TW``), then a rendition with no locale, then any. Then style: exact,
    then none, then any. Remaining ties go to the first declared.
    """
    candidates = [(i, v) for i, v in enumerate(variants) if v.id == arm]
    if not candidates:
        raise ValueError(f"no variant {arm!r}")
    wanted = norm_locale(locale)
    language = wanted.split("-")[0] if wanted else None

    def score(item: tuple[int, Variant]) -> tuple[int, int, int]:
        index, variant = item
        have = norm_locale(variant.locale)
        if have is None:
            locale_score = 1
        elif have == wanted:
            locale_score = 4
        elif have == language:
            locale_score = 3
        elif language is not None and have.split("-")[0] == language:
            locale_score = 2
        else:
            locale_score = 0
        style_score = 2 if variant.style == style else 1 if variant.style is None else 0
        return locale_score, style_score, -index

    return max(candidates, key=score)[1]


@dataclass(frozen=True, slots=True)
class Rendered:
    title: str
    body: str


@dataclass(frozen=True, slots=True)
class TemplateFailure:
    """Why a template could not be rendered (shown in the decision's ``detail``)."""

    message: str


class _Sandbox(ImmutableSandboxedEnvironment):
    """The sandbox, plus bounds on ``*`` and ``**`` (``{{ 'x' * 10**9 }}`` would exhaust
    memory before any output limit is checked)."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, op: str, left: Any, right: Any) -> Any:
        if op == "**":
            if isinstance(right, int | float) and abs(right) > _MAX_EXPONENT:
                raise SecurityError("exponent too large")
            return operator.pow(left, right)
        if op == "*":
            for seq, count in ((left, right), (right, left)):
                if (
                    isinstance(seq, str | list | tuple)
                    and isinstance(count, int)
                    and count * max(len(seq), 1) > _MAX_REPEAT
                ):
                    raise SecurityError("repetition too large")
            return operator.mul(left, right)
        return super().call_binop(context, op, left, right)


class ContentEngine:
    """Compiles and renders templates; one per campaign index.

    Compiled templates and holiday calendars are memoised here (pure memos: the same input
    always gives the same output), so a decision does not re-parse a template per event.
    """

    def __init__(self) -> None:
        self._env = _Sandbox(undefined=StrictUndefined, autoescape=False)
        self._globals = dict(self._env.globals)
        self._templates: dict[str, Template | TemplateFailure] = {}
        self._calendars: dict[tuple[str, str | None, int], holidays.HolidayBase | None] = {}

    def compile(self, source: str) -> Template | TemplateFailure:
        """The compiled template, or why it does not compile (memoised by source)."""
        cached = self._templates.get(source)
        if cached is None:
            try:
                cached = self._env.from_string(source)
            except TemplateError as exc:
                cached = TemplateFailure(f"syntax: {exc}")
            self._templates[source] = cached
        return cached

    def check(self, campaign: Campaign) -> list[str]:
        """Syntax problems of a campaign's templates, ``variants[i].title: ...`` each
        (for the API to reject a campaign before it is activated)."""
        problems = []
        for i, variant in enumerate(campaign.variants):
            for field_name in ("title", "body"):
                compiled = self.compile(getattr(variant, field_name))
                if isinstance(compiled, TemplateFailure):
                    problems.append(f"variants[{i}].{field_name}: {compiled.message}")
        return problems

    def render(self, variant: Variant, context: Mapping[str, Any]) -> Rendered | TemplateFailure:
        """Title and body of ``variant`` in ``context``; never raises."""
        out = []
        for field_name, limit in (("title", MAX_TITLE_CHARS), ("body", MAX_BODY_CHARS)):
            compiled = self.compile(getattr(variant, field_name))
            if isinstance(compiled, TemplateFailure):
                return TemplateFailure(f"{field_name}: {compiled.message}")
            try:
                text = self._render(compiled, context)
            # A template is tenant input: whatever it raises (UndefinedError, SecurityError,
            # ZeroDivisionError, TypeError…) is its failure, never the decision's.
            except Exception as exc:
                return TemplateFailure(f"{field_name}: {type(exc).__name__}: {exc}")
            if len(text) > limit:
                return TemplateFailure(f"{field_name}: {len(text)} characters, limit {limit}")
            out.append(text.strip())
        return Rendered(title=out[0], body=out[1])

    def _render(self, template: Template, context: Mapping[str, Any]) -> str:
        """``template.render(context)``, through Jinja's low-level API: ``render`` copies
        the environment's globals out of a ``ChainMap`` into every new context (twice),
        about two thirds of a short template's time; here they are a plain dict made
        once. Same variables, same globals, same output and exceptions."""
        env = self._env
        ctx = env.context_class(
            env,
            {**self._globals, **context},
            template.name,
            template.blocks,
            globals=self._globals,
        )
        return env.concat(template.root_render_func(ctx))

    def holiday(self, country: str | None, day: date, locale: str | None) -> str | None:
        """The public holiday on ``day`` in ``country`` (ISO alpha-2), named in the user's
        language when the calendar has it, else in the country's own; ``None`` if none or
        the country is unknown."""
        if not country:
            return None
        key = (country.upper(), norm_locale(locale), day.year)
        if key not in self._calendars:
            self._calendars[key] = _calendar(key[0], locale, day.year)
        calendar = self._calendars[key]
        if calendar is None:
            return None
        name = calendar.get(day)
        return None if name is None else str(name)


def _calendar(country: str, locale: str | None, year: int) -> holidays.HolidayBase | None:
    try:
        probe = holidays.country_holidays(country)
    except NotImplementedError:
        return None
    language = _holiday_language(probe.supported_languages, locale) or probe.default_language
    return holidays.country_holidays(country, years=year, language=language)


def _holiday_language(supported: Sequence[str], locale: str | None) -> str | None:
    wanted = norm_locale(locale)
    if wanted is None:
        return None
    by_norm = {norm_locale(lang): lang for lang in supported}
    if wanted in by_norm:
        return by_norm[wanted]
    language = wanted.split("-")[0]
    if language in by_norm:
        return by_norm[language]
    return next(
        (lang for norm, lang in sorted(by_norm.items()) if norm and norm.split("-")[0] == language),
        None,
    )


def build_context(
    *,
    profile: Profile,
    segment: str,
    venue: Venue,
    event_kind: str,
    event_at: float,
    dwell_s: float | None,
    visit_id: str,
    campaign: Campaign,
    variant_id: str,
    now: float,
    local: datetime,
    holiday: str | None,
    route: RouteTip | None,
) -> dict[str, Any]:
    """The whitelisted template context: plain dicts, lists and scalars only, so templates
    reach no object with methods of ours.

    ``user`` (attributes + ``user_id``, ``tags``, ``scene_tags``, ``segment``,
    ``language``), ``venue`` (``id``, ``name``, ``kind``, ``tags``, ``parent_id``,
    ``metadata``), ``event`` (``kind``, ``at``, ``dwell_s``, ``dwell_min``, ``visit_id``),
    ``offer`` (the campaign's ``offer`` data + ``campaign_id``, ``variant_id``, ``ttl_s``,
    ``expires_at``, ``expires_local`` "HH:MM"), ``time_of_day``, ``local_time`` "HH:MM",
    ``holiday`` (name or None), ``recently_viewed`` (item or None), ``route`` (route tip or
    None).
    """
    user: dict[str, Any] = profile.attributes.model_dump()
    user.update(
        user_id=profile.user_id,
        tags=list(profile.tags),
        scene_tags=list(profile.scene_tags),
        segment=segment,
        language=profile.content_locale,
    )
    expires_at = now + campaign.offer_ttl_s
    expires_local = datetime.fromtimestamp(expires_at, local.tzinfo)
    # f-strings, not strftime("%H:%M"): the same text at a fraction of the cost.
    offer: dict[str, Any] = dict(campaign.offer)
    offer.update(
        campaign_id=campaign.id,
        variant_id=variant_id,
        ttl_s=campaign.offer_ttl_s,
        expires_at=expires_at,
        expires_local=f"{expires_local.hour:02d}:{expires_local.minute:02d}",
    )
    return {
        "user": user,
        "venue": {
            "id": venue.id,
            "name": venue.name,
            "kind": str(venue.kind),
            "tags": list(venue.tags),
            "parent_id": venue.parent_id,
            "metadata": venue.metadata,
        },
        "event": {
            "kind": event_kind,
            "at": event_at,
            "dwell_s": dwell_s,
            "dwell_min": None if dwell_s is None else int(dwell_s // 60),
            "visit_id": visit_id,
        },
        "offer": offer,
        "time_of_day": time_of_day(local),
        "local_time": f"{local.hour:02d}:{local.minute:02d}",
        "holiday": holiday,
        "recently_viewed": None
        if profile.recently_viewed is None
        else profile.recently_viewed.model_dump(),
        "route": None if route is None else route.as_context(),
    }
