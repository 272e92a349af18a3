"""The content engine's fast paths render exactly what Jinja's own ``Template.render``
renders from the whole context: the same text, or the same error.

The engine builds only the context names a variant reads, reads dict keys without the
sandbox's ``getattr`` detour, renders text-and-``{{ path }}`` templates without a Jinja
context, and renders a body in the title's context when the title left it untouched.
"""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.decisions.builders import FORUM, HELSINKI, campaign, profile, venue
from triggers.decisions import ContentEngine, Variant
from triggers.decisions.content import (
    CONTEXT_NAMES,
    MAX_BODY_CHARS,
    MAX_TITLE_CHARS,
    Rendered,
    TemplateFailure,
    build_context,
)

TEMPLATES = [
    "Tervetuloa",
    "",
    "{{ venue.name }}: {{ offer.code }}",
    "{{ user.first_name | default('hei') }}, {{ venue.name }}",
    "{{ user.nickname | default('friend') }} {{ user.nickname | default('x', true) }}",
    "{{ user.first_name | default(none, true) }}|{{ event.dwell_min | default(0) }}",
    "{{ event.dwell_min }} min, {{ offer.expires_local }}",
    "{{ user.nickname }}",
    "{{ nobody }}",
    "{{ nobody | default('x') }}",
    "{{ nobody.name | default('x') }}",
    "{{ user.first_name.upper }}",
    "{{ offer.items }}",
    "{{ offer.update }}",
    "{{ offer.get('code') }}",
    "{{ user.__class__ }}",
    "{{ venue._hidden }} {{ venue.metadata.floor }} {{ venue.tags }}",
    "{{ user }}",
    "{{ venue['name'] }} {{ venue.name ~ '!' }} {{ time_of_day }} {{ local_time }}",
    "{{ holiday }} {{ route }} {{ recently_viewed }}",
    "{{ self }} {{ range(2) | list }} {{ lipsum is defined }}",
    "{% if holiday %}Hyvää {{ holiday }}!{% else %}Hei {{ venue.name }}!{% endif %}",
    "{% set x = venue.name %}{{ x }}",
    "{{ x | default('no x') }} {{ m is defined }} {{ ns is defined }}",
    "{% macro m() %}M{{ offer.code }}{% endmacro %}{{ m() }}",
    "{% set ns = namespace(a=1) %}{{ ns.a }}",
    "{% autoescape true %}{{ '<b>' }}{% endautoescape %}{{ '<i>' }}",
    "{% block b %}B{{ user.first_name }}{% endblock %}{{ self.b() }}",
    "{% for t in venue.tags %}{{ loop.index }}{{ t }}{% endfor %}",
    "{{ 1 / 0 }}",
    "{{ 'x' * 20000 }}",
    "{{ venue.name * 1000 }}",
    "  {{ venue.name }}\n",
    "{{ venue.name",
]


def _kwargs(**changes: Any) -> dict[str, Any]:
    local = datetime(2026, 11, 28, 14, 0, tzinfo=ZoneInfo(HELSINKI))
    v = venue(FORUM)
    v.metadata["floor"] = 2
    return {
        "profile": profile(attributes={"loyalty": "gold"}),
        "segment": "active",
        "venue": v,
        "event_kind": "dwell",
        "event_at": local.timestamp(),
        "dwell_s": 620.0,
        "visit_id": "vis1",
        "campaign": campaign(offer={"code": "FORUM10", "items": "shadowed?"}),
        "variant_id": "a",
        "now": local.timestamp(),
        "local": local,
        "holiday": "Itsenäisyyspäivä",
        "route": None,
        **changes,
    }


def _context() -> dict[str, Any]:
    return build_context(**_kwargs())


def _reference(variant: Variant, context: dict[str, Any]) -> Rendered | TemplateFailure:
    """``ContentEngine.render`` as Jinja's public API does it: a new context per template
    from the whole context."""
    env = ContentEngine()._env  # a fresh sandbox of the same class and settings
    out = []
    for field_name, limit in (("title", MAX_TITLE_CHARS), ("body", MAX_BODY_CHARS)):
        try:
            template = env.from_string(getattr(variant, field_name))
        except Exception as exc:
            return TemplateFailure(f"{field_name}: syntax: {exc}")
        try:
            text = template.render(context)
        except Exception as exc:
            return TemplateFailure(f"{field_name}: {type(exc).__name__}: {exc}")
        if len(text) > limit:
            return TemplateFailure(f"{field_name}: {len(text)} characters, limit {limit}")
        out.append(text.strip())
    return Rendered(title=out[0], body=out[1])


def test_no_context_name_is_a_jinja_global() -> None:
    # The engine learns a variant's names from Jinja, which leaves globals out.
    assert not CONTEXT_NAMES & set(ContentEngine()._env.globals)


@pytest.mark.parametrize("title", TEMPLATES)
def test_render_is_jinjas_for_every_title_and_body(title: str) -> None:
    context = _context()
    engine = ContentEngine()
    for body in TEMPLATES:
        variant = Variant(id="a", title=title, body=body)
        expected = _reference(variant, context)
        assert engine.render(variant, context) == expected, (title, body)
        only_read = {k: v for k, v in context.items() if k in engine.names(variant)}
        assert engine.render(variant, only_read) == expected, (title, body)


def test_plain_templates_take_the_fast_path() -> None:
    engine = ContentEngine()
    plain = [t for t in TEMPLATES if engine._analyse(t)[2] is not None]
    assert "{{ venue.name }}: {{ offer.code }}" in plain
    assert "{{ self }} {{ range(2) | list }} {{ lipsum is defined }}" not in plain
    assert len(plain) >= 10


def test_lazy_context_builds_the_same_values_for_the_names_read() -> None:
    full = _context()
    for names in itertools.combinations(sorted(CONTEXT_NAMES), 2):
        part = build_context(**_kwargs(), names=frozenset(names))
        assert part == {k: full[k] for k in names}
        assert list(part) == [k for k in full if k in names]


def test_user_dict_is_the_attributes_model_dump_and_the_users_fields() -> None:
    user = profile(attributes={"loyalty": "gold", "vip": True, "city": "Espoo"})
    built = build_context(**_kwargs(profile=user))["user"]
    assert built == user.attributes.model_dump() | {
        "user_id": "u1",
        "tags": [],
        "scene_tags": [],
        "segment": "active",
        "language": "fi-FI",
    }
    dumped = list(user.attributes.model_dump())
    assert list(built)[: len(dumped)] == dumped


@pytest.mark.parametrize(
    "name", ["name", "items", "get", "__class__", "__dict__", "mro", "__name__", "_x", "fromkeys"]
)
def test_a_dict_has_exactly_the_attributes_the_fast_getattr_leaves_to_the_sandbox(
    name: str,
) -> None:
    from triggers.decisions.content import _DICT_ATTRIBUTES  # noqa: PLC0415

    assert hasattr({}, name) == (name in _DICT_ATTRIBUTES)
