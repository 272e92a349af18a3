"""Content: the sandbox, strict variables, holidays, age bands, locales, route tips."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.decisions.builders import (
    DONGDAN,
    FORUM,
    GUOMAO,
    HELSINKI,
    JIANGUOMEN,
    SHANGHAI,
    XIZHIMEN,
    at,
    campaign,
    event,
    policy,
    profile,
    reasons,
    run,
    venue,
)
from triggers.decisions import (
    ContentEngine,
    NextStop,
    Style,
    Variant,
    Visit,
    age_band,
    learn_next_stops,
    pick_rendition,
    route_tip,
    time_of_day,
)

SATURDAY_2PM = at("2026-11-28 14:00")


def _body(body: str, **kw: Any) -> tuple[str, str | None]:
    """(reason, body sent or the error detail) for a one-variant campaign."""
    user = kw.pop("user", profile())
    where = kw.pop("venue_id", FORUM)
    when = kw.pop("when", SATURDAY_2PM)
    c = campaign(variants=[{"id": "a", "title": "t", "body": body}], **kw)
    decision = run(event(where, when), user, [c], venue(where))
    if decision.chosen is not None:
        return "sent", decision.chosen.body
    return reasons(decision)["c1"], decision.considered[0].detail


@pytest.mark.parametrize(
    "template",
    [
        "{{ user.__class__ }}",
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ venue.metadata.__init__.__globals__ }}",
        "{{ user.update({'first_name': 'x'}) }}",
        "{{ cycler.__init__.__globals__.os }}",
        "{{ 'x' * 1000000 }}",
        "{{ 2 ** 100000 }}",
        "{{ no_such_variable }}",
        "{{ user.no_such_attribute }}",
        "{{ 1 / 0 }}",
        "{% for x in %}",
    ],
)
def test_template_outside_the_sandbox_context_is_a_template_error(template: str) -> None:
    reason, detail = _body(template)
    assert reason == "template_error"
    assert detail


def test_default_filter_covers_an_unknown_variable() -> None:
    assert _body("{{ user.nickname | default('friend') }}") == ("sent", "friend")


def test_whitelisted_context_renders() -> None:
    body = (
        "{{ user.first_name }}/{{ user.city }}/{{ venue.name }}/{{ venue.kind }}/"
        "{{ event.kind }}/{{ time_of_day }}/{{ local_time }}/{{ offer.code }}/"
        "{{ offer.expires_local }}/{{ user.segment }}/{{ user.loyalty }}"
    )
    user = profile(attributes={"city": "Helsinki", "loyalty": "gold"})
    assert _body(body, user=user, offer={"code": "FORUM10"}) == (
        "sent", "Aino/Helsinki/Forum/mall/enter/afternoon/14:00/FORUM10/15:00/new/gold")


def test_recently_viewed_item_appears_in_content() -> None:
    user = profile(recently_viewed={"id": "sku-1", "name": "Unikko-mekko", "price": 195})
    body = "{% if recently_viewed %}Vielä mielessä: {{ recently_viewed.name }}{% endif %}"
    assert _body(body, user=user) == ("sent", "Vielä mielessä: Unikko-mekko")


GREETING = "{% if holiday %}Hyvää {{ holiday }}!{% else %}Hei!{% endif %}"


def test_holiday_greeting_on_finnish_independence_day() -> None:
    user = profile(attributes={"country": "FI", "locale": "fi-FI"})
    assert _body(GREETING, user=user, when=at("2026-12-06 12:00")) == (
        "sent", "Hyvää Itsenäisyyspäivä!")
    assert _body(GREETING, user=user, when=at("2026-12-07 12:00")) == ("sent", "Hei!")


def test_holiday_on_chinese_national_day_in_the_users_language() -> None:
    user = profile(attributes={"country": "CN", "locale": "zh-CN", "timezone": SHANGHAI})
    body = "{{ holiday | default('none', true) }}"
    assert _body(body, user=user, when=at("2026-10-01 12:00", SHANGHAI)) == ("sent", "国庆节")
    english = profile(attributes={"country": "CN", "locale": "en-GB", "timezone": SHANGHAI})
    assert _body(body, user=english, when=at("2026-10-01 12:00", SHANGHAI)) == (
        "sent", "National Day")


@pytest.mark.parametrize(("user_country", "venue_metadata", "tenant_country", "expected"), [
    ("FI", {}, None, "Hyvää Itsenäisyyspäivä!"),
    (None, {"addr:country": "FI"}, None, "Hyvää Itsenäisyyspäivä!"),  # where they are now
    (None, {}, "FI", "Hyvää Itsenäisyyspäivä!"),
    ("CN", {"addr:country": "FI"}, "FI", "Hei!"),  # the user's own country wins
    (None, {}, None, "Hei!"),
])
def test_holiday_comes_from_the_user_else_the_venue_else_the_tenant(
    user_country: str | None, venue_metadata: dict[str, str], tenant_country: str | None,
    expected: str,
) -> None:
    user = profile(attributes={"country": user_country, "locale": "fi-FI"})
    c = campaign(variants=[{"id": "a", "title": "t", "body": GREETING}])
    place = venue(FORUM, metadata=venue_metadata)
    decision = run(event(FORUM, at("2026-12-06 12:00")), user, [c], place,
                   policy(country=tenant_country))
    assert decision.chosen is not None
    assert decision.chosen.body == expected


def test_holiday_is_none_for_unknown_or_missing_country() -> None:
    engine = ContentEngine()
    assert engine.holiday(None, date(2026, 12, 6), "fi") is None
    assert engine.holiday("ZZ", date(2026, 12, 6), "fi") is None


@pytest.mark.parametrize(
    ("age", "style"),
    [(None, Style.NEUTRAL), (16, Style.CASUAL), (24, Style.CASUAL), (25, Style.NEUTRAL),
     (54, Style.NEUTRAL), (55, Style.FORMAL), (90, Style.FORMAL)],
)
def test_age_bands(age: int | None, style: Style) -> None:
    assert age_band(age) is style


STYLED = [
    {"id": "a", "title": "t", "body": "Moi! Tsekkaa alet", "style": "casual"},
    {"id": "a", "title": "t", "body": "Tervetuloa ostoksille", "style": "neutral"},
    {"id": "a", "title": "t", "body": "Arvoisa asiakas, tervetuloa", "style": "formal"},
]


@pytest.mark.parametrize(
    ("age", "body"),
    [(19, "Moi! Tsekkaa alet"), (40, "Tervetuloa ostoksille"), (67, "Arvoisa asiakas, tervetuloa")],
)
def test_style_follows_the_users_age_band(age: int, body: str) -> None:
    decision = run(event(FORUM, SATURDAY_2PM), profile(attributes={"age": age}),
                   [campaign(variants=STYLED)], venue(FORUM))
    assert decision.chosen is not None and decision.chosen.body == body


LOCALISED = [
    Variant(id="a", title="t", body="Welcome"),
    Variant(id="a", title="t", body="Tervetuloa", locale="fi"),
    Variant(id="a", title="t", body="Välkommen", locale="sv-FI"),
    Variant(id="a", title="t", body="欢迎", locale="zh-CN"),
    Variant(id="b", title="t", body="other arm", locale="fi-FI"),
]


@pytest.mark.parametrize(
    ("locale", "body"),
    [("fi-FI", "Tervetuloa"), ("sv_FI", "Välkommen"), ("sv-SE", "Välkommen"),
     ("zh-CN", "欢迎"), ("de-DE", "Welcome"), (None, "Welcome")],
)
def test_rendition_by_locale_falls_back(locale: str | None, body: str) -> None:
    assert pick_rendition(LOCALISED, "a", locale, Style.NEUTRAL).body == body


def test_language_preference_overrides_locale() -> None:
    decision = run(event(FORUM, SATURDAY_2PM),
                   profile(language="sv-FI"),
                   [campaign(variants=[v.model_dump() for v in LOCALISED[:4]])], venue(FORUM))
    assert decision.chosen is not None
    assert (decision.chosen.body, decision.chosen.locale) == ("Välkommen", "sv-FI")


@pytest.mark.parametrize(
    ("hour", "part"),
    [(4, "night"), (5, "morning"), (11, "morning"), (12, "afternoon"), (16, "afternoon"),
     (17, "evening"), (20, "evening"), (21, "night"), (0, "night")],
)
def test_time_of_day(hour: int, part: str) -> None:
    assert time_of_day(datetime(2026, 11, 28, hour, 30, tzinfo=ZoneInfo(HELSINKI))) == part


ROUTE_BODY = (
    "{% if route and route.line %}{{ route.line.name }} ({{ route.line.local_name }}) "
    "→ {{ route.next_station.name }}"
    "{% elif route and route.next_station %}换乘 → {{ route.next_station.name }}"
    "{% elif route %}{{ route.lines | map(attribute='name') | join(', ') }}"
    "{% endif %}"
)


def _commutes(origin: str, destination: str, days: int) -> list[Visit]:
    visits = []
    for day in range(days):
        start = at(f"2026-11-{2 + day:02d} 08:00", SHANGHAI)
        visits += [Visit(origin, "transit_station", start, start + 120),
                   Visit(destination, "transit_station", start + 1200, start + 1320)]
    return visits


def _station_venues() -> dict[str, Any]:
    return {v: venue(v) for v in (GUOMAO, DONGDAN, JIANGUOMEN, XIZHIMEN)}


def test_usual_next_station_is_learned_from_visits() -> None:
    stops = learn_next_stops(_commutes(GUOMAO, DONGDAN, 3), _station_venues())
    assert stops == {GUOMAO: NextStop(venue_id=DONGDAN, name="东单",
                                      line_ids=("line-1", "line-5"), trips=3)}


def test_one_trip_is_not_a_routine_and_late_arrivals_are_not_trips() -> None:
    assert learn_next_stops(_commutes(GUOMAO, DONGDAN, 1), _station_venues()) == {}
    far_apart = [Visit(GUOMAO, "transit_station", 0.0, 60.0),
                 Visit(DONGDAN, "transit_station", 6000.0, 6060.0)] * 3
    assert learn_next_stops(far_apart, _station_venues()) == {}


def test_route_tip_at_guomao_names_the_shared_line_to_the_usual_next_station() -> None:
    stops = learn_next_stops(_commutes(GUOMAO, DONGDAN, 3), _station_venues())
    user = profile(attributes={"timezone": SHANGHAI, "locale": "zh-CN"},
                   next_stops={k: v.model_dump() for k, v in stops.items()})
    assert _body(ROUTE_BODY, user=user, venue_id=GUOMAO, venues={"kinds": ["transit_station"]},
                 when=at("2026-11-30 08:05", SHANGHAI)) == ("sent", "Line 1 (1号线) → 东单")


def test_route_tip_without_a_shared_line_says_transfer() -> None:
    tip = route_tip(venue(GUOMAO), NextStop(venue_id=XIZHIMEN, name="西直门",
                                            line_ids=("line-2", "line-4", "line-13")))
    assert tip is not None
    context = tip.as_context()
    assert context["line"] is None and context["transfer"] is True
    assert [line["name"] for line in context["lines"]] == ["Line 1", "Line 10"]


def test_route_tip_without_history_lists_the_stations_lines() -> None:
    assert _body(ROUTE_BODY, user=profile(attributes={"timezone": SHANGHAI}), venue_id=GUOMAO,
                 venues={"kinds": ["transit_station"]},
                 when=at("2026-11-30 08:05", SHANGHAI)) == ("sent", "Line 1, Line 10")


def test_no_route_tip_outside_transit() -> None:
    assert route_tip(venue(FORUM), None) is None
    assert _body("{{ route is none }}") == ("sent", "True")


def test_syntax_errors_are_reported_with_the_field_path() -> None:
    engine = ContentEngine()
    c = campaign(variants=[{"id": "a", "title": "ok", "body": "fine"},
                           {"id": "b", "title": "{% if %}", "body": "x"}])
    [problem] = engine.check(c)
    assert (problem.field, problem.kind) == ("variants[1].title", "syntax")
    assert problem.message.startswith("syntax")
