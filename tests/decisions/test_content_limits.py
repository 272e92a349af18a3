"""Template renders are bounded in operations, output, value sizes and (given a clock)
time: each hostile template of the attacker's test ends as ``template_error`` naming the
limit, in milliseconds, and a campaign is previewed for sample users before it is
stored."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.decisions.builders import FORUM, at, campaign, event, profile, reasons, run, venue
from triggers.decisions import (
    CampaignIndex,
    ContentEngine,
    RenderLimits,
    Variant,
    preview_campaign,
)
from triggers.decisions.content import Rendered, build_context
from triggers.decisions.sandbox import CALL_OPERATIONS, RenderMeter

SATURDAY_2PM = at("2026-11-28 14:00")


def _decided(body: str, **kw: Any) -> tuple[str, str | None]:
    """(reason, detail or the body sent) of a one-variant campaign's decision."""
    c = campaign(variants=[{"id": "a", "title": "t", "body": body}], **kw)
    decision = run(event(FORUM, SATURDAY_2PM), profile(), [c], venue(FORUM))
    if decision.chosen is not None:
        return "sent", decision.chosen.body
    return reasons(decision)["c1"], decision.considered[0].detail


ATTACKS = [
    # The attacker's test: 13.6 s, 8.3 s and 100 MB before.
    ("{{ 9**64**64**64**64 }}", "digits, more than 77"),
    ("{% for a in range(1000) %}{% for b in range(1000) %}{% for c in range(300) %}"
     "{% endfor %}{% endfor %}{% endfor %}", "more than 20,000 operations"),
    ("{{ 'x'|center(10**8) }}", "a width of 100,000,000"),
    ("{{ 'x'|center(100000000) }}", "a width of 100,000,000"),
    # Growth without an intercepted operator: doubling through a namespace, a set block,
    # a macro's output.
    ("{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}"
     "{% endfor %}{{ ns.s | length }}", "'~' would build"),
    ("{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s %}{{ ns.s }}"
     "{{ ns.s }}{% endset %}{% endfor %}", "characters of output"),
    ("{% macro d(n) %}{% if n %}{% set s = d(n - 1) %}{{ s }}{{ s }}{% endif %}x"
     "{% endmacro %}{{ d(40) | length }}", "characters of output"),
    ("{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}"
     "{{ f(40) }}", "operations"),
    # Builtins asked to allocate.
    ("{{ '{:>100000000}'.format(1) }}", "format width 100000000"),
    ("{{ '%100000000d' % 1 }}", "format width 100000000"),
    ("{{ '%*d' % (100000000, 1) }}", "'%*' widths"),
    ("{{ [1] | batch(100000000, 'x') | list }}", "linecount 100,000,000"),
    ("{{ [1] | slice(100000000) | list }}", "slices 100,000,000"),
    ("{{ range(1000) | join('x' * 16000) }}", "join() would build"),
    ("{{ ('x' * 16000) | replace('x', 'y' * 1000) }}", "replace() would build"),
    ("{{ [('x' * 10000)] * 10000 }}", "'*' would build"),
    ("{{ 'x'.ljust(10**8) }}", "a width of 100,000,000"),
    ("{% set ns = namespace(x=3) %}{% for i in range(100) %}{% set ns.x = ns.x * ns.x %}"
     "{% endfor %}{{ ns.x }}", "product of more than 256 bits"),
    ("{{ range(100000) | list }}", "range() of 100,000 numbers"),
    ("{{ (1).to_bytes(100000000, 'big') }}", "not safely callable"),
    ("{{ 'ab'.expandtabs(100000000) }}", "not safely callable"),
    ("{{ ('x' * 16000).translate({120: 'y' * 16000}) }}", "not safely callable"),
    ("{{ lipsum(100000) }}", "'lipsum' is undefined"),
]


@pytest.mark.parametrize(("template", "reason"), ATTACKS)
def test_hostile_template_is_a_template_error_naming_the_limit(template: str,
                                                               reason: str) -> None:
    outcome, detail = _decided(template)
    assert outcome == "template_error"
    assert detail is not None and reason in detail


@pytest.mark.parametrize("template", [
    "Hei {{ user.first_name }}! {% for t in venue.tags %}{{ t | upper }} {% endfor %}",
    "{% if user.age < 25 %}Moi{% elif user.age < 55 %}Hei{% else %}Hyvää päivää{% endif %}",
    "{% macro greet(name) %}Hei {{ name }}{% endmacro %}{{ greet(user.first_name) }}",
    "{{ '%.2f' % 3.14159 }} € {{ '{:>6}'.format('off') }} {{ (2 ** 64) }}",
    "{{ user.first_name ~ ', ' ~ venue.name }} {{ range(10) | join(',') }}",
    "{{ ('ab' * 100) | length }} {{ [1, 2] + [3] }} {{ 'x' | center(20) }}",
    "{{ venue.name.replace('Forum', 'FORUM') }} {{ ', '.join(['a', 'b']) }}",
])
def test_ordinary_templates_render_within_the_limits(template: str) -> None:
    outcome, _ = _decided(template)
    assert outcome == "sent"


class _Ticking:
    """A clock that moves a millisecond each time it is read."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 0.001
        return self.now


def _context() -> dict[str, Any]:
    local = datetime.fromtimestamp(SATURDAY_2PM, ZoneInfo("Europe/Helsinki"))
    return build_context(profile=profile(), segment="active", venue=venue(FORUM),
                         event_kind="enter", event_at=SATURDAY_2PM, dwell_s=None,
                         visit_id="v1", campaign=campaign(), variant_id="a",
                         now=SATURDAY_2PM, local=local, holiday=None, route=None)


def test_a_render_past_the_deadline_of_the_clock_passed_in_stops() -> None:
    clock = _Ticking()
    engine = ContentEngine(RenderLimits(timeout_s=0.05), clock=clock)
    slow = "{% for i in range(100) %}{% for j in range(10) %}.{% endfor %}{% endfor %}"
    rendered = engine.render(Variant(id="a", title="t", body=slow), _context())
    assert getattr(rendered, "message", "").endswith("rendering took longer than 50 ms")
    # No clock: the same template is bounded by operations only (~2,100 are fine).
    unbounded = ContentEngine().render(Variant(id="a", title="t", body=slow), _context())
    assert isinstance(unbounded, Rendered) and unbounded.body


def test_a_variant_past_a_limit_is_not_rendered_again_by_the_same_engine() -> None:
    clock = _Ticking()
    engine = ContentEngine(clock=clock)
    hostile = Variant(id="a", title="t", body="{% for i in range(1000) %}{% for j in "
                                              "range(1000) %}{% endfor %}{% endfor %}")
    first = engine.render(hostile, _context())
    reads = clock.now
    again = engine.render(hostile, _context())
    assert clock.now == reads  # not rendered: no meter, no clock read
    assert getattr(again, "message", "").startswith(getattr(first, "message", "?"))
    assert "not rendered again" in getattr(again, "message", "")
    # A new engine (the campaign index rebuilt after a change) tries again.
    assert "not rendered again" not in getattr(
        ContentEngine().render(hostile, _context()), "message", "")


def test_output_is_counted_where_it_is_written_inside_macros_and_blocks() -> None:
    limits = RenderLimits(max_output_chars=100)
    engine = ContentEngine(limits)
    hidden = ("{% macro m() %}" + "x" * 60 + "{% endmacro %}{% set a = m() %}"
              "{% set b %}{{ a }}{% endset %}ok")
    rendered = engine.render(Variant(id="a", title="t", body=hidden), _context())
    assert "more than 100 characters of output" in getattr(rendered, "message", "")


@settings(max_examples=60, deadline=None)
@given(sizes=st.lists(st.integers(0, 60), min_size=1, max_size=4),
       calls=st.booleans(), text=st.text(alphabet="ab~", max_size=8))
def test_no_render_spends_more_than_its_limits(sizes: list[int], calls: bool,
                                               text: str) -> None:
    """Nested loops, macro calls and concatenation in any mix: the render ends, within
    its operation budget (plus at most the one call that went past it) and its output
    limit."""
    limits = RenderLimits(max_operations=2_000, max_output_chars=500)
    body = "{% macro m(x) %}{{ x ~ '" + text + "' }}{% endmacro %}"
    for depth, size in enumerate(sizes):
        body += f"{{% for i{depth} in range({size}) %}}"
    body += "{{ m(1) }}" if calls else "{{ 'y' ~ i0 }}"
    body += "{% endfor %}" * len(sizes)
    env = ContentEngine(limits)._env
    meter = RenderMeter(limits)
    ctx = env.context_class(env, dict(env.globals), None, {})
    ctx.meter = meter
    try:
        output = env.concat(env.from_string(body).root_render_func(ctx))
    except Exception as exc:
        assert "TemplateLimitError" in type(exc).__name__
    else:
        assert len(output) <= limits.max_output_chars
    assert meter.operations <= limits.max_operations + CALL_OPERATIONS
    assert meter.emitted <= limits.max_output_chars + len(text) + 10


# --------------------------------------------------------------------------- preview


def _problems(**variant: Any) -> list[tuple[str, str]]:
    c = campaign(variants=[{"id": "a", "title": "t", "body": "b", **variant}])
    return [(p.field, p.kind) for p in preview_campaign(ContentEngine(), c)]


def test_preview_refuses_a_template_that_does_not_parse_naming_the_field() -> None:
    assert _problems(body="Hi {{ user.first_name") == [("variants[0].body", "syntax")]


def test_preview_refuses_a_template_past_the_limits_for_a_sample_user() -> None:
    # Only the senior sample user (age 70) takes the costly branch.
    body = ("{% if user.age and user.age > 60 %}{% for i in range(1000) %}{% for j in "
            "range(1000) %}{% endfor %}{% endfor %}{% endif %}hello")
    assert _problems(title="{{ 9**64**64 }}", body=body) == [
        ("variants[0].title", "limit"), ("variants[0].body", "limit")]


def test_preview_refuses_a_holiday_greeting_that_is_too_long() -> None:
    body = "{% if holiday %}{{ 'Happy ' ~ holiday ~ '!' * 5000 }}{% endif %}"
    assert _problems(body=body) == [("variants[0].body", "limit")]


def test_preview_accepts_names_real_profiles_may_have() -> None:
    assert _problems(body="{{ user.loyalty_tier }} {{ route.line }}") == []


def test_preview_of_many_costly_variants_stays_within_its_own_budget() -> None:
    # 19,000 operations a render: within a render's limit, but four samples of the
    # first variant spend most of what a whole preview may.
    costly = "{% for i in range(1000) %}{% for j in range(8) %}{% endfor %}{% endfor %}"
    c = campaign(variants=[{"id": f"v{i}", "title": "t", "body": costly} for i in range(20)])
    [problem] = preview_campaign(ContentEngine(), c)
    assert (problem.field, problem.kind) == ("variants[1].body", "limit")
    assert "more than 80,000 operations in all" in problem.message


def test_campaign_index_renders_with_the_limits_it_was_given() -> None:
    index = CampaignIndex([campaign()], render_limits=RenderLimits(max_range=5))
    variant = Variant(id="a", title="t", body="{{ range(6) | list }}")
    rendered = index.content.render(variant, _context())
    assert "range() of 6 numbers, more than 5" in getattr(rendered, "message", "")
