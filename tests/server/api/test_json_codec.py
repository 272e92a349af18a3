"""The API reads and writes JSON with orjson, and answers as the standard library did.

``loads`` must return what :func:`server.errors.parse_json` returns, or raise the same
400, and refuse a number that overflows to infinity naming it; ``dumps`` must write a
document that reads back to the same values, and never ``NaN`` or ``Infinity`` (not
JSON: no client's parser reads them).
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.api.context import dumps, json_response, loads
from server.errors import ApiError, parse_json

PINGS = (b'{"pings": [{"user_id": "ann", "ts": 1700000000.123, "lat": 60.1687, '
         b'"lng": 24.9384, "accuracy_m": 10.0, "mock": false, "device_id": null}]}')


def _loads(body: bytes) -> Any:
    """The reader without the value checks (tested below on their own)."""
    return loads(body, check_values=False)


def _outcome(parse: Any, body: bytes) -> tuple[str, Any]:
    try:
        return "ok", repr(parse(body))
    except ApiError as exc:
        return "error", (exc.status, exc.code, exc.message, exc.field)


@pytest.mark.parametrize("body", [
    PINGS, b'{"pings": [', b'{"pings": [{"lat": NaN}]}', b"[Infinity]", b"[-Infinity]",
    b'{"a":1,}', b'{"a":1} x', b" \n{\"a\":\n x}", b"\xff", b'"\xed\xa0\x80"',
    b'{"a": "\\ud800"}', b"\xef\xbb\xbf{}", b"[1e400]", b"[-1e400]", b"[1e-400]",
    b"[18446744073709551615]", b"[18446744073709551616]", b"[-9223372036854775809]",
    b"[123456789012345678901234567890]", b"[0.1234567890123456789]", b"[-0.0, -0]",
    b'{"a": 1, "a": 2}', b'"a\x01b"', b"[01]", b"[.5]", b"\x0c[1]", b"[" * 2000 + b"]" * 2000,
    '{"é": "😀"}'.encode(), '{"a": 1}'.encode("utf-16"), b"{}", b"null", b"  7 ",
], ids=repr)
def test_reads_every_body_as_the_standard_library_did(body: bytes) -> None:
    assert _outcome(_loads, body) == _outcome(parse_json, body)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner,
                                                                 max_size=4),
    max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(_JSON)
def test_any_json_document_reads_back_the_same(value: Any) -> None:
    body = json.dumps(value).encode()
    assert _outcome(_loads, body) == _outcome(parse_json, body)
    assert json.loads(dumps(value)) == value


@pytest.mark.parametrize("data", [
    {"ratio": math.nan}, [1.0, math.inf], {"nested": [{"x": -math.inf}], "y": None},
    {"big": 2**64, "ratio": math.nan}, {1: math.inf},
], ids=repr)
def test_non_finite_numbers_are_written_as_null(data: Any) -> None:
    def refuse(name: str) -> Any:
        raise AssertionError(f"{name} written")
    written = json.loads(dumps(data), parse_constant=refuse)
    assert json.dumps(written) == json.dumps(data).replace("-Infinity", "null").replace(
        "Infinity", "null").replace("NaN", "null")


@pytest.mark.parametrize(("body", "field"), [
    (b"[1e400]", "[0]"), (b'{"a": {"b": [1, -1e400]}}', "a.b[1]"),
    (b'{"w": 1.5e308, "x": 2e308}', "x"), (b"1e999", None),
    (b'{"n": 123456789012345678901234567890, "x": 1e400}', "x"),
], ids=repr)
def test_a_number_that_overflows_to_infinity_is_refused_with_its_path(
    body: bytes, field: str | None,
) -> None:
    with pytest.raises(ApiError) as caught:
        loads(body)
    assert (caught.value.status, caught.value.code, caught.value.field) == (
        422, "non_finite_number", field)


def test_tiny_and_huge_but_finite_numbers_are_fine() -> None:
    assert loads(b"[1e-400, 1.7e308, 123456789012345678901234567890]") == [
        0.0, 1.7e308, 123456789012345678901234567890]


@pytest.mark.parametrize("data", [
    {1: "int key"}, {"big": 2**64}, {"small": -(2**63) - 1}, {None: True},
], ids=repr)
def test_what_orjson_refuses_is_written_by_the_standard_library(data: Any) -> None:
    assert dumps(data) == json.dumps(data).encode()


def test_a_response_is_utf8_json_with_nulls_kept() -> None:
    resp = json_response({"accepted": 1, "rejected": [], "reason": None, "name": "café"},
                         status=201)
    assert resp.status == 201
    assert resp.content_type == "application/json" and resp.charset == "utf-8"
    assert isinstance(resp.body, bytes)
    assert json.loads(resp.body) == {"accepted": 1, "rejected": [], "reason": None,
                                     "name": "café"}


@pytest.mark.parametrize(("body", "field"), [
    (b'{"a": ["x", "y\\u0000"]}', "a[1]"), (b'{"a\\u0000": 1}', "a\x00"),
    (b'{"a": {"b": "\\udc00"}}', "a.b"), (b'"\\ud800"', None),
], ids=repr)
def test_text_no_database_stores_is_refused_with_its_path(body: bytes, field: str | None) -> None:
    with pytest.raises(ApiError) as caught:
        loads(body)
    assert (caught.value.status, caught.value.code, caught.value.field) == (
        422, "invalid_text", field)


def test_surrogate_pairs_and_escaped_backslashes_are_fine() -> None:
    assert loads(b'["\\ud83d\\ude00", "\\\\u0000"]') == ["\U0001f600", "\\u0000"]
