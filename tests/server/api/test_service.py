"""The service basics: health, readiness, metrics, docs, and the error shape for what
the router itself refuses (unknown route, wrong method, body too large, not JSON)."""

from __future__ import annotations

import gzip
import io

import aiohttp
import pytest

from server.auth import Role
from tests.server.api.conftest import Api, gzipped, ping, venue_feature

pytestmark = pytest.mark.asyncio(loop_scope="session")


def assert_error(body: object, code: str, field: str | None = None) -> None:
    assert isinstance(body, dict) and set(body) == {"error"}, body
    error = body["error"]
    assert error["code"] == code, error
    assert isinstance(error["message"], str) and error["message"]
    if field is not None:
        assert error["field"] == field, error


async def test_healthz_and_readyz_answer_without_a_key(api: Api) -> None:
    resp = await api.client.get("/healthz")
    assert resp.status == 200 and await resp.json() == {"status": "ok"}
    resp = await api.client.get("/readyz")
    body = await resp.json()
    assert resp.status == 200 and body["status"] == "ready" and body["checks"]["store"]


async def test_unknown_route_is_a_json_404(api: Api) -> None:
    resp = await api.client.get("/v1/nothing-here")
    assert resp.status == 404
    assert_error(await resp.json(), "not_found")


async def test_wrong_method_is_a_json_405_with_allow(api: Api) -> None:
    resp = await api.client.delete("/v1/pings", headers=api.auth())
    assert resp.status == 405
    assert "POST" in resp.headers["Allow"]
    assert_error(await resp.json(), "method_not_allowed")


async def test_body_that_is_not_json_is_a_400_invalid_json(api: Api) -> None:
    resp = await api.client.post("/v1/pings", data=b'{"pings": [', headers=api.auth(Role.SDK))
    assert resp.status == 400
    assert_error(await resp.json(), "invalid_json")


async def test_nan_is_not_json(api: Api) -> None:
    resp = await api.client.post("/v1/pings", data=b'{"pings": [{"lat": NaN}]}',
                                 headers=api.auth(Role.SDK))
    assert resp.status == 400
    assert_error(await resp.json(), "invalid_json")


LIMIT_TEXT = f"the limit is {1 << 20:,} bytes"
"""What a 413 says under the tests' ``max_body_bytes`` (1 MiB, ``make_settings``)."""


@pytest.mark.parametrize(("method", "path", "role", "limit"), [
    ("POST", "/v1/pings", Role.SDK, 1 << 20),
    ("POST", "/v1/venues/import", Role.MANAGER, 1 << 20),
    ("PUT", "/v1/policy", Role.ADMIN, 256 << 10),
])
async def test_body_over_the_limit_is_a_413_stating_the_limit(
    api: Api, method: str, path: str, role: Role, limit: int
) -> None:
    """Each route states its own limit (settings' defaults, capped by the tests'
    ``max_body_bytes``)."""
    big = io.BytesIO(b'{"pings": [' + b" " * (2 << 20) + b"]}")
    resp = await api.client.request(method, path, data=big, headers=api.auth(role))
    assert resp.status == 413
    answer = await resp.json()
    assert_error(answer, "payload_too_large")
    assert f"the limit is {limit:,} bytes" in answer["error"]["message"], answer


async def test_gzip_bomb_is_stopped_at_the_limit_and_told_it(api: Api) -> None:
    """64 KiB on the wire, 8 MiB inflated: the limit counts the decoded body."""
    bomb = gzip.compress(b'{"pings": [' + b" " * (8 << 20) + b"]}")
    assert len(bomb) < 1 << 16
    resp = await api.client.post("/v1/pings", data=bomb, headers={
        **api.auth(Role.SDK), "Content-Encoding": "gzip", "Content-Type": "application/json"})
    assert resp.status == 413
    answer = await resp.json()
    assert_error(answer, "payload_too_large")
    assert LIMIT_TEXT in answer["error"]["message"] and "gzip" in answer["error"]["message"]


async def test_multipart_upload_over_the_limit_is_a_413_stating_the_limit(api: Api) -> None:
    form = aiohttp.FormData()
    form.add_field("file", io.BytesIO(b"\0" * (2 << 20)), filename="venues.gpkg",
                   content_type="application/geopackage+sqlite3")
    resp = await api.client.post("/v1/venues/import", data=form, headers=api.auth())
    assert resp.status == 413
    answer = await resp.json()
    assert_error(answer, "payload_too_large")
    assert LIMIT_TEXT in answer["error"]["message"]


async def test_the_root_leads_to_the_docs(api: Api) -> None:
    resp = await api.client.get("/")
    index = await resp.json()
    assert resp.status == 200 and index["name"] == "geopush"
    docs = await api.client.get(index["docs"])
    assert docs.status == 200 and docs.content_type == "text/html"
    spec = await api.client.get(index["openapi"])
    assert spec.status == 200 and (await spec.json())["openapi"] == "3.1.0"
    assert index["version"] == (await spec.json())["info"]["version"]


async def test_a_browser_at_the_root_is_sent_to_the_docs(api: Api) -> None:
    resp = await api.client.get("/", headers={"Accept": "text/html,*/*;q=0.8"},
                                allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"] == "/docs"


async def test_gzip_body_is_accepted(api: Api) -> None:
    resp = await api.client.post("/v1/pings", data=gzipped({"pings": [ping()]}), headers={
        **api.auth(Role.SDK), "Content-Encoding": "gzip", "Content-Type": "application/json"})
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["accepted"] == 1


async def test_request_id_is_echoed_or_made_up(api: Api) -> None:
    resp = await api.client.get("/healthz", headers={"X-Request-Id": "abc-123"})
    assert resp.headers["X-Request-Id"] == "abc-123"
    resp = await api.client.get("/healthz", headers={"X-Request-Id": "bad id!"})
    assert len(resp.headers["X-Request-Id"]) == 32


async def test_docs_page_lists_every_operation(api: Api) -> None:
    doc = await (await api.client.get("/v1/openapi.json")).json()
    resp = await api.client.get("/docs")
    page = await resp.text()
    assert resp.status == 200 and resp.content_type == "text/html"
    assert "<script" not in page  # self-contained: nothing to fetch
    for path, item in doc["paths"].items():
        for op in item.values():
            assert f'id="{op["operationId"]}"' in page, path


async def test_openapi_is_3_1_and_every_protected_operation_documents_errors(api: Api) -> None:
    doc = await (await api.client.get("/v1/openapi.json")).json()
    assert doc["openapi"] == "3.1.0"
    assert doc["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if op["security"]:
                for status in ("401", "403", "429"):
                    assert status in op["responses"], (method, path, status)
                    ref = op["responses"][status]["content"]["application/json"]["schema"]
                    assert ref == {"$ref": "#/components/schemas/ErrorBody"}


async def test_metrics_count_pings_events_and_latency(api: Api) -> None:
    await api.call("PUT", "/v1/venues/senate", json_body=_venue(), expect=201)
    _, body = await api.call("POST", "/v1/pings", role=Role.SDK, expect=200, json_body={
        "pings": [ping(ts=api.clock.now - 20), ping(ts=api.clock.now - 10),
                  ping(lat=95.0)]})
    assert body["accepted"] == 2
    resp = await api.client.get("/metrics")
    text = await resp.text()
    assert resp.status == 200 and resp.content_type.startswith("text/plain")
    assert 'geopush_pings_accepted_total{source="json"} 2.0' in text
    assert 'geopush_pings_rejected_total{reason="less_than_equal"} 1.0' in text
    assert 'geopush_events_total{kind="enter"} 1.0' in text
    assert "geopush_batch_seconds_count" in text
    assert "geopush_outbox_depth 0.0" in text


def _venue() -> dict[str, object]:
    return venue_feature()
