"""Compressed request bodies: gzip and deflate are inflated; a body that does not
inflate is a JSON 400 ``invalid_body`` and the connection stays usable (it was a 500 and
a dropped connection); ``br`` and every other coding a JSON 415 ``unsupported_encoding``
naming the supported ones (``br`` was a plain-text 400 from inside aiohttp); a body that
inflates past the size limit a 413 stating the limit. No store is involved: the
embedded one serves."""

from __future__ import annotations

import asyncio
import gzip
import json
import zlib

import pytest

from server.auth import Role
from tests.server.api.conftest import NOON_UTC, Api, ping, venue_feature
from tests.server.api.test_service import assert_error

pytestmark = pytest.mark.asyncio(loop_scope="session")

BODY = json.dumps({"pings": [ping("u1", ts=NOON_UTC - 5)]}).encode()
LIMIT = 1 << 20
"""``make_settings``' ``max_body_bytes``."""


def raw_deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


async def exchange(api: Api, requests: list[tuple[str, str, dict[str, str], bytes]],
                   ) -> list[tuple[int, dict[str, str], bytes]]:
    """Send ``requests`` one after another on one keep-alive connection, as a client
    library would; each answer's status, headers and body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", api.client.port)
    answers = []
    try:
        for method, path, headers, body in requests:
            head = [f"{method} {path} HTTP/1.1", "Host: test", f"Content-Length: {len(body)}",
                    *(f"{k}: {v}" for k, v in headers.items())]
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
            await writer.drain()
            status_line = await reader.readline()
            assert status_line.startswith(b"HTTP/1.1 "), status_line
            status = int(status_line.split()[1])
            got: dict[str, str] = {}
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                got[name.strip().lower()] = value.strip()
            answers.append((status, got, await reader.readexactly(
                int(got["content-length"]))))
    finally:
        writer.close()
    return answers


def _pings_request(api: Api, encoding: str, body: bytes) -> tuple[str, str, dict[str, str],
                                                                 bytes]:
    return ("POST", "/v1/pings", {**api.auth(Role.SDK), "Content-Type": "application/json",
                                  "Content-Encoding": encoding}, body)


@pytest.mark.parametrize(("encoding", "body"), [
    ("gzip", gzip.compress(BODY)),
    ("x-gzip", gzip.compress(BODY)),
    ("GZIP", gzip.compress(BODY)),
    ("deflate", zlib.compress(BODY)),
    ("deflate", raw_deflate(BODY)),
    ("gzip, gzip", gzip.compress(gzip.compress(BODY))),
    ("deflate, gzip", gzip.compress(zlib.compress(BODY))),
    ("identity", BODY),
    ("gzip", gzip.compress(BODY[:40]) + gzip.compress(BODY[40:])),
], ids=["gzip", "x-gzip", "upper-case", "deflate-zlib", "deflate-raw", "gzip-twice",
        "deflate-then-gzip", "identity", "two-gzip-members"])
async def test_compressed_pings_are_inflated_and_taken(memory_api: Api, encoding: str,
                                                       body: bytes) -> None:
    await memory_api.call("PUT", "/v1/venues/senate", json_body=venue_feature(), expect=201)
    [(status, _, answer)] = await exchange(memory_api, [
        _pings_request(memory_api, encoding, body)])
    assert status == 200, answer
    assert json.loads(answer)["accepted"] == 1


@pytest.mark.parametrize(("encoding", "body"), [
    ("gzip", b"this is not gzip at all"),
    ("deflate", b"nor deflate"),
    ("gzip", gzip.compress(BODY)[:20]),
    ("deflate", zlib.compress(BODY)[:-3]),
    ("gzip", gzip.compress(BODY) + b"trailing junk"),
    ("deflate", zlib.compress(BODY) + b"trailing junk"),
    ("gzip, gzip", gzip.compress(BODY)),
], ids=["gzip-garbage", "deflate-garbage", "gzip-truncated", "deflate-truncated",
        "gzip-trailing", "deflate-trailing", "gzip-listed-twice-applied-once"])
async def test_a_body_that_does_not_inflate_is_a_400_and_the_connection_lives_on(
    memory_api: Api, encoding: str, body: bytes,
) -> None:
    answers = await exchange(memory_api, [
        _pings_request(memory_api, encoding, body),
        ("GET", "/healthz", {}, b""),
    ])
    (status, headers, answer), (after, _, _) = answers
    assert status == 400, answer
    assert headers["content-type"].startswith("application/json")
    assert_error(json.loads(answer), "invalid_body")
    assert after == 200


@pytest.mark.parametrize("encoding", ["br", "zstd", "compress", "x-custom", "gzip, br"])
async def test_an_unsupported_coding_is_a_415_naming_the_supported_ones(
    memory_api: Api, encoding: str,
) -> None:
    answers = await exchange(memory_api, [
        _pings_request(memory_api, encoding, b"\x8b\x02\x80{}\x03"),
        ("GET", "/healthz", {}, b""),
    ])
    (status, headers, answer), (after, _, _) = answers
    assert status == 415, answer
    assert headers["content-type"].startswith("application/json")
    assert headers["accept-encoding"] == "gzip, deflate"
    body = json.loads(answer)
    assert_error(body, "unsupported_encoding")
    assert "gzip or deflate" in body["error"]["message"]
    assert after == 200


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
async def test_a_body_that_inflates_past_the_limit_is_a_413_stating_it(
    memory_api: Api, encoding: str,
) -> None:
    """Two mebibytes of spaces compress to a few kilobytes: a small bomb. Inflating
    stops at the limit."""
    bomb = b'{"pings": []' + b" " * (2 * LIMIT) + b"}"
    packed = gzip.compress(bomb) if encoding == "gzip" else zlib.compress(bomb)
    assert len(packed) < LIMIT // 100
    [(status, _, answer)] = await exchange(memory_api, [
        _pings_request(memory_api, encoding, packed)])
    assert status == 413
    body = json.loads(answer)
    assert_error(body, "payload_too_large")
    assert f"{LIMIT:,}" in body["error"]["message"]


async def test_a_body_that_inflates_to_exactly_the_limit_is_read(memory_api: Api) -> None:
    body = b'{"pings": []' + b" " * (LIMIT - 13) + b"}"
    assert len(body) == LIMIT
    [(status, _, answer)] = await exchange(memory_api, [
        _pings_request(memory_api, "gzip", gzip.compress(body))])
    assert status == 200, answer


async def test_a_compressed_osmand_form_is_read(memory_api: Api) -> None:
    form = f"id=u1&lat=60.1699&lon=24.9384&timestamp={NOON_UTC - 5:.0f}".encode()
    [(status, _, answer)] = await exchange(memory_api, [(
        "POST", "/v1/osmand", {**memory_api.auth(Role.SDK), "Content-Encoding": "gzip",
                               "Content-Type": "application/x-www-form-urlencoded"},
        gzip.compress(form))])
    assert status == 200, answer
    assert json.loads(answer)["accepted"] == 1


async def test_a_compressed_multipart_upload_is_a_415(memory_api: Api) -> None:
    boundary = "geopush-test-boundary"
    form = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"v.geojson\"\r\nContent-Type: application/geo+json\r\n\r\n"
            '{"type": "FeatureCollection", "features": []}'
            f"\r\n--{boundary}--\r\n").encode()
    [(status, _, answer)] = await exchange(memory_api, [(
        "POST", "/v1/venues/import", {
            **memory_api.auth(), "Content-Encoding": "gzip",
            "Content-Type": f"multipart/form-data; boundary={boundary}"},
        gzip.compress(form))])
    assert status == 415, answer
    assert_error(json.loads(answer), "unsupported_encoding")
