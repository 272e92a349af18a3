"""``GET /v1/venues/{id}/hours``: a venue's opening hours as campaigns read them."""

from __future__ import annotations

from typing import Any

import pytest

from server.auth import Role
from tests.server.api.conftest import Api, venue_feature
from tests.server.api.test_service import assert_error

pytestmark = pytest.mark.asyncio(loop_scope="session")

HELSINKI_TZ = "Europe/Helsinki"


async def put_venue(api: Api, **props: Any) -> None:
    await api.call("PUT", "/v1/venues/senate", role=Role.MANAGER,
                   json_body=venue_feature("senate", timezone=HELSINKI_TZ, **props))


async def hours(api: Api, query: str = "", expect: int = 200) -> Any:
    _, body = await api.call("GET", f"/v1/venues/senate/hours{query}", role=Role.MANAGER,
                             expect=expect)
    return body


def spans(body: Any) -> list[tuple[str, str, str]]:
    return [(s["start"], s["end"], s["state"]) for s in body["spans"]]


async def test_hours_over_christmas_show_the_dates_off(api: Api) -> None:
    # 2026-12-23 is a Wednesday; 24-26 are off by date, the 27th is a Sunday.
    await put_venue(api, opening_hours="Mo-Fr 10:00-18:00; Dec 24-26 off")
    body = await hours(api, "?from=2026-12-23&days=4")
    assert spans(body) == [
        ("2026-12-23T00:00:00+02:00", "2026-12-23T10:00:00+02:00", "closed"),
        ("2026-12-23T10:00:00+02:00", "2026-12-23T18:00:00+02:00", "open"),
        ("2026-12-23T18:00:00+02:00", "2026-12-27T00:00:00+02:00", "closed"),
    ]
    assert body["understood"] is True and body["problem"] is None
    assert (body["opening_hours"], body["timezone"]) == (
        "Mo-Fr 10:00-18:00; Dec 24-26 off", HELSINKI_TZ)


async def test_hours_default_to_today_in_the_venues_zone(api: Api) -> None:
    # The test clock is Monday 2026-03-02 12:00 UTC, 14:00 in Helsinki.
    await put_venue(api, opening_hours="Mo-Fr 10:00-18:00")
    body = await hours(api, "?days=1")
    assert spans(body) == [
        ("2026-03-02T00:00:00+02:00", "2026-03-02T10:00:00+02:00", "closed"),
        ("2026-03-02T10:00:00+02:00", "2026-03-02T18:00:00+02:00", "open"),
        ("2026-03-02T18:00:00+02:00", "2026-03-03T00:00:00+02:00", "closed"),
    ]


async def test_public_holidays_follow_the_venues_position_and_school_holidays_are_a_caveat(
    api: Api,
) -> None:
    # No addr:country and no tenant country: the venue stands in Helsinki, Finland.
    await put_venue(api, opening_hours="Mo-Su 10:00-18:00; PH off; SH off")
    body = await hours(api, "?from=2026-12-25&days=1")
    assert spans(body) == [
        ("2026-12-25T00:00:00+02:00", "2026-12-26T00:00:00+02:00", "closed")]
    assert body["caveat"] == "school holidays (SH) have no calendar; SH rules not applied"


async def test_unknown_spans_carry_the_rules_comment(api: Api) -> None:
    await put_venue(api, opening_hours='Sa unknown "ask the front desk"')
    body = await hours(api, "?from=2026-03-07&days=1")  # a Saturday
    assert body["spans"] == [{"start": "2026-03-07T00:00:00+02:00",
                              "end": "2026-03-08T00:00:00+02:00", "state": "unknown",
                              "comment": "ask the front desk"}]


async def test_hours_that_do_not_parse_are_open_and_say_why(api: Api) -> None:
    await put_venue(api, opening_hours="Mo-Fr: 10:00-18:00")
    body = await hours(api, "?from=2026-03-02&days=2")
    assert body["understood"] is False
    assert body["problem"] == ("'Mo-Fr: 10:00-18:00' is not OSM opening_hours syntax "
                               "(at column 6)")
    assert body["spans"] == [{"start": "2026-03-02T00:00:00+02:00",
                              "end": "2026-03-04T00:00:00+02:00", "state": "open",
                              "comment": "not understood; treated as open"}]


async def test_a_venue_without_hours_is_open_throughout(api: Api) -> None:
    await put_venue(api)
    body = await hours(api, "?from=2026-03-02&days=1")
    assert body["opening_hours"] is None and body["understood"] is True
    assert [s["comment"] for s in body["spans"]] == ["no opening hours"]


async def test_metadata_opening_hours_are_the_ones_read_when_the_field_is_empty(
    api: Api,
) -> None:
    await put_venue(api, metadata={"opening_hours": "Sa-Su 12:00-14:00"})
    body = await hours(api, "?from=2026-03-07&days=1")
    assert body["opening_hours"] == "Sa-Su 12:00-14:00"
    assert [s["state"] for s in body["spans"]] == ["closed", "open", "closed"]


@pytest.mark.parametrize(("query", "field"), [
    ("?from=2026-13-01", "from"), ("?from=yesterday", "from"), ("?days=0", "days"),
    ("?days=32", "days"), ("?days=seven", "days"),
])
async def test_bad_hours_queries_name_the_parameter(api: Api, query: str, field: str) -> None:
    await put_venue(api, opening_hours="Mo-Fr 10:00-18:00")
    assert_error(await hours(api, query, expect=422), "validation_error", field)


async def test_hours_of_an_unknown_venue_are_404(api: Api) -> None:
    _, body = await api.call("GET", "/v1/venues/nowhere/hours", role=Role.MANAGER, expect=404)
    assert_error(body, "not_found")


async def test_an_sdk_key_cannot_read_hours(api: Api) -> None:
    await put_venue(api, opening_hours="Mo-Fr 10:00-18:00")
    await api.call("GET", "/v1/venues/senate/hours", role=Role.SDK, expect=403)
