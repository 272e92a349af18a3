"""Push content: sandboxed templates, variant renditions by locale and age band, context.

Templates are Jinja2 in a :class:`~triggers.decisions.sandbox.BoundedSandbox` (an
``ImmutableSandboxedEnvironment``, which also refuses to mutate lists and dicts, whose
renders are bounded in operations, output, value sizes and, given a clock, time) with
``StrictUndefined``: a template sees only the whitelisted context of
:func:`build_context`, ``_``-prefixed attributes (``user.__class__``) are refused, an
unknown variable is an error unless the template says ``{{ x | default("...") }}``. Any
failure is a :class:`TemplateFailure`; the decision then sends nothing for that campaign
and records ``template_error`` with the reason. A variant whose render went past a limit
is not rendered again by the same engine (see :meth:`ContentEngine.render`). Output is
plain text (no autoescape): channels escape for their medium.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final

import holidays
from jinja2 import StrictUndefined, Template, TemplateError, meta, nodes
from jinja2.exceptions import SecurityError
from jinja2.nodes import EvalContext
from jinja2.runtime import Context

from triggers.decisions.models import Campaign, Profile, Style, Variant, norm_locale
from triggers.decisions.routes import RouteTip
from triggers.decisions.sandbox import (
    BoundedSandbox,
    RenderLimits,
    RenderMeter,
    is_limit_error,
    spent_its_budget,
)
from venues.model import Venue

MAX_TITLE_CHARS = 256
MAX_BODY_CHARS = 4096
"""Longer output is an error, not a truncation: a cut-off offer reads as a bug to the user."""

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
class TemplateProblem:
    """Why a campaign's template is refused: ``field`` is its path in the campaign
    (``variants[0].body``), ``kind`` ``syntax``, ``limit`` or ``content`` (rich content)."""

    field: str
    kind: str
    message: str


@dataclass(frozen=True, slots=True)
class TemplateFailure:
    """Why a template could not be rendered (shown in the decision's ``detail``)."""

    message: str


_DICT_ATTRIBUTES = frozenset(dir(dict))
"""Every attribute a plain ``dict`` has (methods and dunders): ``getattr`` finds these."""


class _Sandbox(BoundedSandbox):
    """The bounded sandbox, with a faster ``getattr`` on the context's plain dicts."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        """``venue.name`` of the context's plain dicts without the base class's detour.

        The base class tries ``getattr(obj, "name")`` first and, for a dict, reads the key
        only after catching the ``AttributeError`` — about half of a short template's time.
        A name that is not an attribute of ``dict`` can only raise there, so its key is
        read directly; dict attributes (``items``, ``__class__``…), missing keys and other
        objects take the base class's path as before.
        """
        if type(obj) is dict and type(attribute) is str and attribute not in _DICT_ATTRIBUTES:
            try:
                return obj[attribute]
            except KeyError:
                pass
        return super().getattr(obj, attribute)


_Path = tuple[str, tuple[str, ...], tuple[Any, ...] | None]
"""A ``{{ name.attr.attr | default(const, ...) }}`` output: the name, the attributes, and
the default filter's arguments (``None`` without the filter)."""


class _Plain:
    """A template that is only text and ``{{ name.attr... }}`` outputs, optionally through
    ``default(constants)`` — most push templates — rendered without a Jinja context.

    The steps are the ones Jinja's compiled code takes for these nodes, with the same
    objects: a name is the context's value or ``environment.undefined(name=...)``; each
    ``.attr`` is ``environment.getattr`` (the sandbox's); ``default`` is Jinja's filter
    (unmetered: it builds nothing), called with the same arguments; each output is
    ``str()`` of the value, in template order, so the same text or the same first
    exception. Anything else (``{% if %}``, other filters, ``[...]``, calls, operators)
    is left to Jinja.
    """

    __slots__ = ("_items",)

    def __init__(self, items: tuple[str | _Path, ...]) -> None:
        self._items = items

    @classmethod
    def of(cls, template: nodes.Template, resolved: Container[str]) -> _Plain | None:
        """The plain form of a parsed template whose compiled code resolves the names
        ``resolved`` from the context, or ``None`` when it is not plain."""
        items: list[str | _Path] = []
        for statement in template.body:
            if not isinstance(statement, nodes.Output):
                return None
            for node in statement.nodes:
                if isinstance(node, nodes.TemplateData):
                    items.append(node.data)
                    continue
                path = _path(node)
                # A name the compiled code does not resolve from the context (``self``,
                # a global) is not a plain read.
                if path is None or path[0] not in resolved:
                    return None
                items.append(path)
        return cls(tuple(items))

    def render(self, env: BoundedSandbox, parent: Mapping[str, Any]) -> str:
        out = []
        for item in self._items:
            if isinstance(item, str):
                out.append(item)
                continue
            name, attributes, default = item
            value = parent[name] if name in parent else env.undefined(name=name)
            for attribute in attributes:
                value = env.getattr(value, attribute)
            if default is not None:
                value = env.unmetered_filters["default"](value, *default)
            out.append(str(value))
        return "".join(out)


_NOT_CONST = object()


def _const(node: nodes.Expr) -> Any:
    return node.value if type(node) is nodes.Const else _NOT_CONST


def _path(node: nodes.Node) -> _Path | None:
    default: tuple[Any, ...] | None = None
    if isinstance(node, nodes.Filter):
        if (
            node.name != "default"
            or node.kwargs
            or node.dyn_args is not None
            or node.dyn_kwargs is not None
            or node.node is None
        ):
            return None
        default = tuple(_const(arg) for arg in node.args)
        if _NOT_CONST in default:
            return None
        node = node.node
    attributes: list[str] = []
    while type(node) is nodes.Getattr:
        attributes.append(node.attr)
        node = node.node
    if type(node) is not nodes.Name or node.ctx != "load":
        return None
    return node.name, tuple(reversed(attributes)), default


_Compiled = Template | TemplateFailure
_CompiledVariant = tuple[_Compiled, _Compiled, frozenset[str], _Plain | None, _Plain | None]
"""Title, body, the context names they read, the title's and the body's plain forms."""


class ContentEngine:
    """Compiles and renders templates; one per campaign index.

    Compiled templates and holiday calendars are memoised here (pure memos: the same input
    always gives the same output), so a decision does not re-parse a template per event.

    ``limits`` bound every render (:class:`~triggers.decisions.sandbox.RenderLimits`);
    ``clock`` (seconds, any origin), when given, also bounds a render's wall time to
    ``limits.timeout_s`` — the server passes ``time.monotonic``; the simulator passes
    none, so its renders are bounded by operations only and stay deterministic.
    """

    def __init__(
        self, limits: RenderLimits | None = None, clock: Callable[[], float] | None = None
    ) -> None:
        self.limits = limits or RenderLimits()
        self._clock = clock
        self._env = _Sandbox(undefined=StrictUndefined, autoescape=False, limits=self.limits,
                             clock=clock)
        self._globals = dict(self._env.globals)
        self._templates: dict[str, Template | TemplateFailure] = {}
        self._variants: dict[tuple[str, str], _CompiledVariant] = {}
        self._spent: dict[tuple[str, str], str] = {}
        """Variants whose render spent its budget → why (see :meth:`render`)."""
        self._fresh_eval = EvalContext(self._env).__dict__
        """A new context's ``eval_ctx`` state (see ``_unused``)."""
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

    def names(self, variant: Variant) -> frozenset[str]:
        """The top-level context names ``variant``'s title and body read, so that a caller
        can build only those parts of the context.

        Jinja's own analysis (``meta.find_undeclared_variables``): exactly the names the
        compiled code resolves from the context, blocks and macros included. A template
        that does not compile reads nothing.
        """
        return self._compiled(variant)[2]

    def check(self, campaign: Campaign) -> list[TemplateProblem]:
        """Syntax problems of a campaign's templates, one per field that does not
        compile (for the API to reject a campaign before it is activated)."""
        problems = []
        for i, variant in enumerate(campaign.variants):
            for field_name in ("title", "body"):
                compiled = self.compile(getattr(variant, field_name))
                if isinstance(compiled, TemplateFailure):
                    problems.append(TemplateProblem(f"variants[{i}].{field_name}", "syntax",
                                                    compiled.message))
        return problems

    def trial(
        self, source: str, context: Mapping[str, Any], max_chars: int, meter: RenderMeter
    ) -> str | None:
        """Why rendering ``source`` in ``context`` is refused, or ``None``: it does not
        compile, it went past ``meter``'s limits or out of the sandbox, or its output
        is longer than ``max_chars``. Any other failure (an undefined name, a division
        by zero) is the context's, not the template's, and answers ``None``."""
        compiled = self.compile(source)
        if isinstance(compiled, TemplateFailure):
            return compiled.message
        env = self._env
        ctx = env.context_class(env, {**self._globals, **context}, compiled.name,
                                compiled.blocks, globals=self._globals)
        ctx.meter = meter
        try:
            text = env.concat(compiled.root_render_func(ctx))
        except Exception as exc:
            if is_limit_error(exc) or isinstance(exc, SecurityError):
                return f"{type(exc).__name__}: {exc}"
            return None
        if len(text) > max_chars:
            return f"renders {len(text):,} characters, more than {max_chars:,}"
        return None

    def render(self, variant: Variant, context: Mapping[str, Any]) -> Rendered | TemplateFailure:
        """Title and body of ``variant`` in ``context``; never raises.

        Rendered through Jinja's low-level API (``Template.render`` copies the
        environment's globals out of a ``ChainMap`` into every new context, twice: about
        two thirds of a short template's time); here the globals and ``context`` are merged
        once into the one dict both templates read, and a plain template (see
        :class:`_Plain`) needs no context at all. Same variables, same globals, same
        output and exceptions.

        Title and body share one :class:`~triggers.decisions.sandbox.RenderMeter`. A
        variant whose render was stopped after spending its budget (operations, time,
        output) is not rendered again by this engine (the campaign index is rebuilt,
        with a new engine, whenever a campaign changes): its later renders fail at once
        with the same reason, so a hostile template costs its budget once, not once per
        event. A render refused an allocation up front (a width, a size) cost nothing
        and is tried again for the next user.
        """
        key = (variant.title, variant.body)
        spent = self._spent.get(key)
        if spent is not None:
            return TemplateFailure(f"{spent} (earlier render; not rendered again until the "
                                   "campaign changes)")
        title, body, _, title_plain, body_plain = self._compiled(variant)
        env = self._env
        parent: dict[str, Any] | None = None
        ctx: Context | None = None
        meter: RenderMeter | None = None
        out = []
        for field_name, compiled, plain, limit in (
            ("title", title, title_plain, MAX_TITLE_CHARS),
            ("body", body, body_plain, MAX_BODY_CHARS),
        ):
            if isinstance(compiled, TemplateFailure):
                return TemplateFailure(f"{field_name}: {compiled.message}")
            try:
                if plain is not None:
                    # A plain template reads no global: ``context`` is all it can see; it
                    # runs no loop, call or operator, so it needs no meter either.
                    text = plain.render(env, context)
                else:
                    if parent is None:
                        parent = {**self._globals, **context}
                    if meter is None:
                        meter = RenderMeter(self.limits, self._clock)
                    if ctx is None or not self._unused(ctx, compiled):
                        ctx = env.context_class(
                            env, parent, compiled.name, compiled.blocks, globals=self._globals
                        )
                        ctx.meter = meter
                    text = env.concat(compiled.root_render_func(ctx))
            # A template is tenant input: whatever it raises (UndefinedError, SecurityError,
            # ZeroDivisionError, TypeError…) is its failure, never the decision's.
            except Exception as exc:
                failure = f"{field_name}: {type(exc).__name__}: {exc}"
                if spent_its_budget(exc):
                    self._spent[key] = failure
                return TemplateFailure(failure)
            if len(text) > limit:
                return TemplateFailure(f"{field_name}: {len(text)} characters, limit {limit}")
            out.append(text.strip())
        return Rendered(title=out[0], body=out[1])

    def _unused(self, ctx: Context, template: Template) -> bool:
        """Whether ``ctx``, after rendering the title, is still what a new context for
        ``template`` would be, so the body can be rendered in it (a context costs about
        a third of a short template).

        Rendering changes a context only through top-level ``{% set %}`` / macros
        (``vars``, ``exported_vars``), blocks and ``{% extends %}`` (``blocks``) and
        ``{% autoescape %}`` (``eval_ctx``, restored on the way out); its parent dict is
        never written. So: neither template has blocks, and nothing was set.
        """
        return (
            not template.blocks
            and not ctx.blocks
            and not ctx.vars
            and not ctx.exported_vars
            and ctx.name == template.name
            and ctx.eval_ctx.__dict__ == self._fresh_eval
        )

    def _compiled(self, variant: Variant) -> _CompiledVariant:
        """The variant's compiled title and body, the context names they read, and their
        plain forms (memoised by the two sources)."""
        key = (variant.title, variant.body)
        found = self._variants.get(key)
        if found is None:
            title, title_names, title_plain = self._analyse(variant.title)
            body, body_names, body_plain = self._analyse(variant.body)
            found = (title, body, title_names | body_names, title_plain, body_plain)
            self._variants[key] = found
        return found

    def _analyse(
        self, source: str
    ) -> tuple[Template | TemplateFailure, frozenset[str], _Plain | None]:
        compiled = self.compile(source)
        if isinstance(compiled, TemplateFailure):
            return compiled, frozenset(), None
        parsed = self._env.parse(source)
        # Exactly the names the compiled code resolves from the context (blocks and
        # macros included); the environment's globals are always there.
        names = frozenset(meta.find_undeclared_variables(parsed))
        env = self._env
        # The plain form writes str() of each value: Jinja's output without a finalize
        # function or autoescaping, which this environment has neither of.
        plain = None if env.finalize is not None or env.autoescape else _Plain.of(parsed, names)
        return compiled, names, plain

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


CONTEXT_NAMES: Final = frozenset(
    {
        "user",
        "venue",
        "event",
        "offer",
        "time_of_day",
        "local_time",
        "holiday",
        "recently_viewed",
        "route",
        "item",
    }
)
"""The top-level names of :func:`build_context`."""


def build_context(
    *,
    profile: Profile,
    segment: str,
    venue: Venue | None,
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
    names: Container[str] = CONTEXT_NAMES,
    item: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The whitelisted template context: plain dicts, lists and scalars only, so templates
    reach no object with methods of ours.

    ``user`` (attributes + ``user_id``, ``tags``, ``scene_tags``, ``segment``,
    ``language``), ``venue`` (``id``, ``name``, ``kind``, ``tags``, ``parent_id``,
    ``metadata``), ``event`` (``kind``, ``at``, ``dwell_s``, ``dwell_min``, ``visit_id``),
    ``offer`` (the campaign's ``offer`` data + ``campaign_id``, ``variant_id``, ``ttl_s``,
    ``expires_at``, ``expires_local`` "HH:MM"), ``time_of_day``, ``local_time`` "HH:MM",
    ``holiday`` (name or None: the public holiday of the user's country, else of the
    venue's, else of the tenant's; see ``decide``), ``recently_viewed`` (item or None),
    ``route`` (route tip or None), ``item`` (a behaviour trigger's item: ``id``,
    ``name``, ``category``, ``tags``, ``price``, ``currency``, ``url``, ``image_url``; None
    for any other event).

    Only the entries in ``names`` are built (``ContentEngine.names`` of the variant: a
    template cannot tell a context without the names it never reads); ``holiday`` and
    ``route`` may then be ``None`` when not named.
    """
    context: dict[str, Any] = {}
    if "user" in names:
        context["user"] = _user_context(profile, segment)
    if "venue" in names and venue is None:
        context["venue"] = None  # a scheduled or behaviour push is about no venue
    elif "venue" in names and venue is not None:
        context["venue"] = {
            "id": venue.id,
            "name": venue.name,
            "kind": str(venue.kind),
            "tags": list(venue.tags),
            "parent_id": venue.parent_id,
            "metadata": venue.metadata,
        }
    if "event" in names:
        context["event"] = {
            "kind": event_kind,
            "at": event_at,
            "dwell_s": dwell_s,
            "dwell_min": None if dwell_s is None else int(dwell_s // 60),
            "visit_id": visit_id,
        }
    if "offer" in names:
        context["offer"] = _offer_context(campaign, variant_id, now, local)
    if "time_of_day" in names:
        context["time_of_day"] = time_of_day(local)
    if "local_time" in names:
        context["local_time"] = f"{local.hour:02d}:{local.minute:02d}"
    if "holiday" in names:
        context["holiday"] = holiday
    if "recently_viewed" in names:
        context["recently_viewed"] = (
            None if profile.recently_viewed is None else profile.recently_viewed.model_dump()
        )
    if "route" in names:
        context["route"] = None if route is None else route.as_context()
    if "item" in names:
        context["item"] = None if item is None else dict(item)
    return context


def _user_context(profile: Profile, segment: str) -> dict[str, Any]:
    """The ``user`` entry of :func:`build_context`."""
    attributes = profile.attributes
    # ``model_dump()`` of a model of scalars, at a tenth of its cost: the field values
    # (declared order), then the extra keys (validated JSON scalars).
    user: dict[str, Any] = {**attributes.__dict__, **(attributes.model_extra or {})}
    user.update(
        user_id=profile.user_id,
        tags=list(profile.tags),
        scene_tags=list(profile.scene_tags),
        segment=segment,
        language=profile.content_locale,
    )
    return user


def _offer_context(
    campaign: Campaign, variant_id: str, now: float, local: datetime
) -> dict[str, Any]:
    """The ``offer`` entry of :func:`build_context`."""
    expires_at = now + campaign.offer_ttl_s
    expires_local = datetime.fromtimestamp(expires_at, local.tzinfo)
    offer: dict[str, Any] = dict(campaign.offer)
    # f-strings, not strftime("%H:%M"): the same text at a fraction of the cost.
    offer.update(
        campaign_id=campaign.id,
        variant_id=variant_id,
        ttl_s=campaign.offer_ttl_s,
        expires_at=expires_at,
        expires_local=f"{expires_local.hour:02d}:{expires_local.minute:02d}",
    )
    return offer
