"""Screening's fast path answers exactly as pydantic's ``PingIn`` does.

The reference below is screening as it was before the fast path: every item through
``PingIn.model_validate``. Whatever the items, :func:`screen` must accept the same pings
with the same values and reject the same ones with the same code, field and message.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from annotated_types import Ge, Le, Lt
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from server.api.schemas import PingIn, RejectedPing
from server.errors import field_path, validation_details
from server.ingest import pings as screening
from server.ingest.pings import FUTURE_TS, Fix, screen, to_batch

NOW = 1_700_000_000.0
MAX_FUTURE_S = 300.0
FORUM = {"user_id": "ann", "ts": NOW - 5, "lat": 60.1687, "lng": 24.9384}


def _reference(items: list[Any], prefix: str = "pings") -> tuple[list[Fix], list[int],
                                                                  list[RejectedPing]]:
    """Pydantic alone, one item at a time (screening before the fast path)."""
    good: list[Fix] = []
    indices: list[int] = []
    rejected: list[RejectedPing] = []
    for i, item in enumerate(items):
        try:
            p = item if isinstance(item, PingIn) else PingIn.model_validate(item)
        except ValidationError as exc:
            rejected.append(RejectedPing(index=i, **validation_details(exc, (prefix, i))[0]))
            continue
        if p.ts > NOW + MAX_FUTURE_S:
            rejected.append(RejectedPing(
                index=i, code=FUTURE_TS, field=field_path(("ts",), (prefix, i)),
                message=f"ts is {p.ts - NOW:.0f} s in the future (more than "
                        f"{MAX_FUTURE_S:g} s ahead of the server clock)"))
            continue
        good.append(Fix(p.user_id, p.ts, p.lat, p.lng, p.accuracy_m, p.speed_mps,
                        p.heading_deg, p.altitude_m, p.mock, p.device_id))
        indices.append(i)
    return good, indices, rejected


def _assert_agrees(items: list[Any]) -> None:
    got = screen(items, now=NOW, max_future_s=MAX_FUTURE_S)
    good, indices, rejected = _reference(items)
    # repr: 1 and 1.0, 0.0 and -0.0 must not pass for one another
    assert [repr(p) for p in got.pings] == [repr(p) for p in good]
    assert list(got.indices) == indices
    assert [r.model_dump() for r in got.rejected] == [r.model_dump() for r in rejected]
    if good:
        fast, slow = to_batch(got.pings), to_batch([PingIn(**p._asdict()) for p in good])
        for name in ("user_id", "ts", "lat", "lng", "accuracy_m", "speed_mps",
                     "heading_deg", "mock"):
            np.testing.assert_array_equal(getattr(fast, name), getattr(slow, name))
            assert getattr(fast, name).dtype == getattr(slow, name).dtype


# --------------------------------------------------------------------------- generated

_BOUNDS = {"ts": (0.0, 1e11), "lat": (-90.0, 90.0), "lng": (-180.0, 180.0),
           "accuracy_m": (0.0, 1e6), "speed_mps": (0.0, 1e4), "heading_deg": (0.0, 360.0),
           "altitude_m": (-1e5, 1e6)}
_ODD_VALUES: list[object] = [math.nan, math.inf, -math.inf, True, False, None, 10**400, -(10**400),
               2**63, "60.1", " 1700000000 ", "2023-11-14T22:13:20Z",
               "2023-11-14T22:13:20", "nan", "", "1e400", [1], {}]
_ODD_TEXT = ["", " ", "a\n", "a\x7f", "a\x00b", "a\ud800", "\udfffb", "é" * 256, "é" * 257,
             "x" * 256, "x" * 257, "\U0001f600" * 256, "\U0001f600" * 257, "a\x85",
             "a\u00a0b", "a\u2028", "café", 7, None, True, 1.5]


def _valid_number(name: str) -> st.SearchStrategy[float | int]:
    low, high = _BOUNDS[name]
    if name == "ts":  # mostly near now, sometimes anywhere in the model's range
        return st.one_of(st.floats(NOW - 1e5, NOW + 2 * MAX_FUTURE_S),
                         st.integers(int(NOW) - 10**5, int(NOW) + 600),
                         st.floats(low, high, exclude_max=True))
    return st.one_of(st.floats(low, high), st.integers(int(low), int(high)),
                     st.sampled_from([low, high, int(low), int(high), -0.0]))


def _near(name: str) -> list[float | int]:
    """On, just inside and just past the bounds, as floats and ints."""
    low, high = _BOUNDS[name]
    return [low, high, int(low), int(high), -0.0, math.nextafter(low, -math.inf),
            math.nextafter(low, math.inf), math.nextafter(high, math.inf),
            math.nextafter(high, -math.inf), low - 1, int(low) - 1, low - 0.25, high + 1,
            int(high) + 1, high + 0.25, high * 10, -high]


_EDGE_VALUES: dict[str, list[Any]] = {
    **{name: _near(name) + _ODD_VALUES for name in _BOUNDS},
    "user_id": _ODD_TEXT, "device_id": _ODD_TEXT,
    "mock": [True, False, 0, 1, 2, 1.0, 0.0, "true", "no", "", None],
}
_EDGE: dict[str, st.SearchStrategy[Any]] = {
    **{name: st.one_of(st.sampled_from(_EDGE_VALUES[name]), st.floats(), st.integers(),
                       st.floats(_BOUNDS[name][0] - abs(_BOUNDS[name][1]),
                                 2 * _BOUNDS[name][1]))
       for name in _BOUNDS},
    **{name: st.one_of(st.sampled_from(_EDGE_VALUES[name]), st.text(max_size=8),
                       st.text(min_size=254, max_size=258))
       for name in ("user_id", "device_id")},
    "mock": st.sampled_from(_EDGE_VALUES["mock"]),
}


@st.composite
def _items(draw: st.DrawFn) -> Any:
    """A valid ping (random optional fields), then none, one or two fields set to an
    edge value or removed, sometimes an unknown key; now and then no object at all or
    an already validated model."""
    kind = draw(st.sampled_from(["ping"] * 8 + ["model", "other"]))
    if kind == "other":
        return draw(st.one_of(st.none(), st.integers(), st.text(max_size=3),
                              st.lists(st.integers(), max_size=2)))
    item: dict[str, Any] = {
        "user_id": draw(st.sampled_from(["ann", "u1", "café", "x" * 256, " "])),
        "ts": draw(_valid_number("ts")),
        "lat": draw(_valid_number("lat")),
        "lng": draw(_valid_number("lng")),
    }
    for name in draw(st.sets(st.sampled_from(sorted(_BOUNDS.keys() - item.keys())))):
        item[name] = draw(st.one_of(st.none(), _valid_number(name)))
    if draw(st.booleans()):
        item["mock"] = draw(st.booleans())
    if draw(st.booleans()):
        item["device_id"] = draw(st.one_of(st.none(), st.text(max_size=5)))
    for name in draw(st.lists(st.sampled_from(sorted(_EDGE)), max_size=2)):
        item[name] = draw(_EDGE[name])
    if draw(st.integers(0, 9)) == 0:
        del item[draw(st.sampled_from(sorted(item)))]
    if draw(st.integers(0, 19)) == 0:
        item[draw(st.sampled_from(["accuracy", "extra", "Lat", "USER_ID"]))] = 1.0
    if kind == "model":
        try:
            return PingIn.model_validate(item)
        except ValidationError:
            return item
    return item


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_items(), max_size=8))
@example([FORUM, {**FORUM, "lat": math.nan}, {**FORUM, "ts": "2023-11-14T22:13:20Z"}])
def test_fast_path_and_pydantic_agree_on_any_items(items: list[Any]) -> None:
    _assert_agrees(items)


# --------------------------------------------------------------------------- edge cases

_FULL = {**FORUM, "accuracy_m": 5.0, "speed_mps": 1.4, "heading_deg": 90, "altitude_m": 12,
         "mock": False, "device_id": "pixel"}


@pytest.mark.parametrize("base", [FORUM, _FULL], ids=["required only", "every field"])
def test_every_edge_value_of_every_field_agrees(base: dict[str, Any]) -> None:
    for name, values in _EDGE_VALUES.items():
        for value in values:
            _assert_agrees([{**base, name: value}])
        _assert_agrees([{k: v for k, v in base.items() if k != name}])



@pytest.mark.parametrize("change", [
    {"lat": math.nan}, {"lng": math.inf}, {"ts": -math.inf}, {"accuracy_m": math.nan},
    {"lat": True}, {"ts": True}, {"mock": 1}, {"mock": None},
    {"ts": "1700000000"}, {"ts": "2023-11-14T22:13:20+00:00"}, {"ts": "2023-11-14T22:13:20"},
    {"lat": 10**400}, {"ts": 10**400}, {"accuracy_m": 10**30}, {"lat": "60.1"},
    {"user_id": "a\ud800"}, {"device_id": "b\udfff"}, {"user_id": "a\n"}, {"user_id": ""},
    {"user_id": "x" * 257}, {"device_id": "x" * 257}, {"accuracy": 5.0}, {"user_id": 7},
    {"heading_deg": 360.0001}, {"speed_mps": -0.1}, {"ts": 1e11}, {"altitude_m": -1e5 - 1},
], ids=repr)
def test_pydantic_decides_anything_that_is_not_plainly_valid(change: dict[str, Any]) -> None:
    item = {**FORUM, **change}
    assert screening._fast(item) is None
    _assert_agrees([FORUM, item])


@pytest.mark.parametrize("change", [
    {}, {"ts": int(NOW)}, {"lat": 60}, {"lat": -0.0}, {"ts": 0}, {"ts": -0.0},
    {"ts": 1e11 - 1}, {"lat": 90.0, "lng": -180}, {"accuracy_m": None, "device_id": None},
    {"accuracy_m": 1e6, "speed_mps": 0, "heading_deg": 360, "altitude_m": -1e5},
    {"mock": True, "device_id": ""}, {"user_id": "x" * 256, "device_id": "d" * 256},
    {"user_id": "café ☕"}, {"user_id": "\U0001f600" * 256}, {"user_id": "a\x85"},
    {"ts": NOW + MAX_FUTURE_S},
], ids=repr)
def test_fast_path_takes_plain_pings_as_pydantic_would(change: dict[str, Any]) -> None:
    item = {**FORUM, **change}
    assert screening._fast(item) is not None
    _assert_agrees([item])


def test_future_ping_is_rejected_on_the_fast_path_with_the_engines_message() -> None:
    item = {**FORUM, "ts": NOW + 3600}
    assert screening._fast(item) is not None
    got = screen([FORUM, item], now=NOW, max_future_s=MAX_FUTURE_S)
    assert got.indices == (0,)
    assert [(r.index, r.code, r.field) for r in got.rejected] == [(1, FUTURE_TS,
                                                                    "pings[1].ts")]
    _assert_agrees([FORUM, item])


def test_models_from_other_sources_are_screened_too() -> None:
    got = screen([PingIn.model_validate(FORUM),
                  PingIn.model_validate({**FORUM, "ts": NOW + 3600})], now=NOW,
                 max_future_s=MAX_FUTURE_S, prefix="location")
    assert got.indices == (0,)
    assert got.rejected[0].field == "location[1].ts"
    assert to_batch([PingIn.model_validate(FORUM)]).user_id.tolist() == ["ann"]


def test_empty_batch_has_empty_columns() -> None:
    assert len(to_batch(screen([], now=NOW, max_future_s=MAX_FUTURE_S).pings)) == 0


def test_absent_optional_values_become_nan_columns() -> None:
    batch = to_batch(screen([FORUM, {**FORUM, "accuracy_m": 12}], now=NOW,
                            max_future_s=MAX_FUTURE_S).pings)
    assert np.isnan(batch.accuracy_m[0]) and batch.accuracy_m[1] == 12.0
    assert batch.mock.tolist() == [False, False]


def _bounds(name: str) -> tuple[float | None, float | None]:
    low = high = None
    for m in PingIn.model_fields[name].metadata:
        if isinstance(m, Ge):
            low = float(m.ge)  # type: ignore[arg-type]
        elif isinstance(m, Le | Lt):
            high = float(m.le if isinstance(m, Le) else m.lt)  # type: ignore[arg-type]
    return low, high


def test_fast_path_rules_are_the_models() -> None:
    assert set(PingIn.model_fields) == screening._FIELDS
    assert Fix._fields == tuple(PingIn.model_fields)
    assert _bounds("ts") == (0.0, screening._TS_MAX)
    assert {name: _bounds(name) for name in ("lat", "lng", "accuracy_m", "speed_mps",
                                             "heading_deg", "altitude_m")} == {
        "lat": (-90.0, 90.0), "lng": (-180.0, 180.0), "accuracy_m": (0.0, 1e6),
        "speed_mps": (0.0, 1e4), "heading_deg": (0.0, 360.0), "altitude_m": (-1e5, 1e6)}
    assert PingIn.model_fields["user_id"].metadata  # pattern + lengths: see the tests above
