"""Console security over plain HTTP: a key exchanged for an HttpOnly, SameSite=Strict
session cookie; CSRF tokens on every write; a cookie of one tenant useless against
another; an SDK key refused; the Content-Security-Policy on every answer."""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass

import pytest

from server.auth import Role
from server.console.session import COOKIE, PRE_COOKIE
from tests.console.conftest import CSRF, META_CSRF, Api
from tests.server.api.conftest import blockbuster, venue_feature  # noqa: F401
from tests.server.conftest import OTHER_TENANT, TENANT

pytestmark = pytest.mark.asyncio(loop_scope="session")


@dataclass
class Signed:
    cookie: str
    csrf: str
    set_cookie: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Cookie": f"{COOKIE}={self.cookie}"}


async def _form_token(api: Api) -> tuple[str, str]:
    resp = await api.client.get("/console/sign-in")
    assert resp.status == 200
    match = CSRF.search(await resp.text())
    assert match is not None
    return match.group(1), resp.cookies[PRE_COOKIE].value


async def sign_in(api: Api, role: Role = Role.MANAGER, tenant: str = TENANT) -> Signed:
    token, pre = await _form_token(api)
    resp = await api.client.post(
        "/console/sign-in", data={"key": api.keys[(tenant, role)], "csrf_token": token},
        headers={"Cookie": f"{PRE_COOKIE}={pre}"}, allow_redirects=False)
    assert resp.status == 303, await resp.text()
    assert resp.headers["Location"] == "/console/venues"
    raw = next(h for h in resp.headers.getall("Set-Cookie") if h.startswith(COOKIE + "="))
    api.client.session.cookie_jar.clear()
    cookie = resp.cookies[COOKIE].value
    page = await api.client.get("/console/venues", headers={"Cookie": f"{COOKIE}={cookie}"})
    match = META_CSRF.search(await page.text())
    assert match is not None
    return Signed(cookie, match.group(1), raw)


async def test_session_cookie_is_httponly_samestrict_and_scoped_to_the_console(
    api: Api,
) -> None:
    signed = await sign_in(api)
    flags = {part.strip().split("=")[0].lower(): part.strip()
             for part in signed.set_cookie.split(";")}
    assert "httponly" in flags
    assert flags["samesite"].lower() == "samesite=strict"
    assert flags["path"] == "Path=/console"
    assert "secure" not in flags  # plain HTTP here; Secure comes with https
    assert api.keys[(TENANT, Role.MANAGER)] not in signed.cookie  # the key is not kept


async def test_an_sdk_key_cannot_sign_in(api: Api) -> None:
    token, pre = await _form_token(api)
    resp = await api.client.post(
        "/console/sign-in", data={"key": api.keys[(TENANT, Role.SDK)], "csrf_token": token},
        headers={"Cookie": f"{PRE_COOKIE}={pre}"}, allow_redirects=False)
    assert resp.status == 403
    assert "An SDK key cannot sign in" in await resp.text()
    assert COOKIE not in resp.cookies


async def test_sign_in_without_the_form_token_is_refused(api: Api) -> None:
    resp = await api.client.post("/console/sign-in",
                                 data={"key": api.keys[(TENANT, Role.ADMIN)]},
                                 allow_redirects=False)
    assert resp.status == 403
    assert COOKIE not in resp.cookies


async def test_a_write_without_the_csrf_token_is_refused_and_stores_nothing(api: Api) -> None:
    signed = await sign_in(api)
    resp = await api.client.put("/console/api/venues/senate", json=venue_feature(),
                                headers=signed.headers)
    body = await resp.json()
    assert resp.status == 403
    assert body["error"]["code"] == "csrf_failed"
    assert await api.store.get_venue(TENANT, "senate") is None
    wrong = await api.client.put("/console/api/venues/senate", json=venue_feature(),
                                 headers={**signed.headers, "X-CSRF-Token": "forged"})
    assert wrong.status == 403
    ok = await api.client.put("/console/api/venues/senate", json=venue_feature(),
                              headers={**signed.headers, "X-CSRF-Token": signed.csrf})
    assert ok.status == 201, await ok.text()
    assert await api.store.get_venue(TENANT, "senate") is not None


async def test_sign_out_needs_the_token_and_then_the_cookie_is_dead(api: Api) -> None:
    signed = await sign_in(api)
    refused = await api.client.post("/console/sign-out", headers=signed.headers,
                                    allow_redirects=False)
    assert refused.status == 403
    out = await api.client.post("/console/sign-out", data={"csrf_token": signed.csrf},
                                headers=signed.headers, allow_redirects=False)
    assert out.status == 303
    after = await api.client.get("/console/api/venues", headers=signed.headers)
    assert after.status == 401
    page = await api.client.get("/console/venues", headers=signed.headers,
                                allow_redirects=False)
    assert (page.status, page.headers["Location"]) == (303, "/console/sign-in")


async def test_a_cookie_of_one_tenant_reads_nothing_of_another(api: Api) -> None:
    await api.call("PUT", "/v1/venues/secret-mall", tenant=OTHER_TENANT,
                   json_body=venue_feature("secret-mall"), expect=201)
    signed = await sign_in(api, tenant=TENANT)
    listed = await api.client.get("/console/api/venues", headers=signed.headers)
    assert [f["id"] for f in (await listed.json())["features"]] == []
    one = await api.client.get("/console/api/venues/secret-mall", headers=signed.headers)
    assert one.status == 404
    page = await api.client.get("/console/venues", headers=signed.headers)
    assert "secret-mall" not in await page.text()


async def test_a_cookie_rewritten_to_name_another_tenant_is_refused(api: Api) -> None:
    signed = await sign_in(api, tenant=TENANT)
    body, _, mac = signed.cookie.partition(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload[2] = OTHER_TENANT
    forged = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")
    resp = await api.client.get("/console/api/venues",
                                headers={"Cookie": f"{COOKIE}={forged}.{mac}"})
    assert resp.status == 401


async def test_revoking_the_key_ends_its_console_sessions(api: Api) -> None:
    signed = await sign_in(api, role=Role.MANAGER)
    keys = await api.store.list_keys(TENANT)
    manager = next(k for k in keys if k.role == Role.MANAGER.value)
    assert await api.store.revoke_key(TENANT, manager.key_id)
    resp = await api.client.get("/console/api/venues", headers=signed.headers)
    assert resp.status == 401


@pytest.mark.parametrize("path", ["/console/sign-in", "/console/venues",
                                  "/console/static/console.js", "/console/api/venues"])
async def test_every_console_answer_carries_a_policy_without_inline_scripts(
    api: Api, path: str,
) -> None:
    signed = await sign_in(api)
    headers = {} if path.endswith("sign-in") else signed.headers
    resp = await api.client.get(path, headers=headers, allow_redirects=False)
    assert resp.status == 200
    policy = _directives(resp.headers["Content-Security-Policy"])
    assert policy["script-src"] == ["'self'"]
    assert "'unsafe-inline'" not in policy["style-src"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert "https://tile.openstreetmap.org" in policy["img-src"]


async def test_console_pages_have_no_inline_script_or_style(api: Api) -> None:
    signed = await sign_in(api)
    await api.call("PUT", "/v1/venues/senate", json_body=venue_feature(), expect=201)
    for path in ("/console/venues", "/console/venues/senate", "/console/venues/upload",
                 "/console/venues/draw", "/console/campaigns", "/console/campaigns/new",
                 "/console/why?user=u1"):
        resp = await api.client.get(path, headers=signed.headers)
        html = await resp.text()
        assert resp.status == 200, (path, html[:300])
        assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) == [], path
        assert " style=" not in html and "<style" not in html, path
        assert re.findall(r"\son[a-z]+=", html) == [], path


def _directives(header: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for part in header.split(";"):
        name, *values = part.split()
        out[name] = values
    return out




async def test_an_admin_sees_keys_and_channels_and_a_manager_does_not(api: Api) -> None:
    admin = await sign_in(api, role=Role.ADMIN)
    page = await api.client.get("/console/admin", headers=admin.headers)
    html = await page.text()
    assert page.status == 200, html[:300]
    for record in await api.store.list_keys(TENANT):
        assert record.key_id in html
    assert api.keys[(TENANT, Role.SDK)] not in html  # ids and names, never secrets
    assert 'href="/console/admin"' in html
    manager = await sign_in(api, role=Role.MANAGER)
    venues = await api.client.get("/console/venues", headers=manager.headers)
    assert 'href="/console/admin"' not in await venues.text()
    refused = await api.client.get("/console/admin", headers=manager.headers)
    assert refused.status == 403


async def test_a_missing_record_or_bad_query_is_a_page_not_a_json_error(api: Api) -> None:
    signed = await sign_in(api)
    missing = await api.client.get("/console/venues/nowhere", headers=signed.headers)
    assert missing.status == 404
    assert missing.content_type == "text/html"
    assert "no venue &#39;nowhere&#39;" in await missing.text()
    bad = await api.client.get("/console/why?user=u1&limit=99999", headers=signed.headers)
    assert bad.status == 422
    assert "limit" in await bad.text()


async def test_the_venue_list_pages_by_25_and_searches_names_and_filters_kinds(
    api: Api,
) -> None:
    for i in range(30):
        kind = "mall" if i % 10 == 0 else "store"
        name = "国贸商城" if i == 20 else f"Store {i:02d}"
        await api.call("PUT", f"/v1/venues/v{i:02d}", expect=201,
                       json_body=venue_feature(f"v{i:02d}", kind=kind, name=name,
                                               tags=["cbd"] if i < 5 else []))
    signed = await sign_in(api)

    async def ids(query: str) -> tuple[list[str], str]:
        html = await (await api.client.get("/console/venues" + query,
                                           headers=signed.headers)).text()
        return re.findall(r"<code>(v\d\d)</code>", html), html

    first, html = await ids("")
    assert first == [f"v{i:02d}" for i in range(25)]
    assert "after=v24" in html
    second, _ = await ids("?after=v24")
    assert second == [f"v{i:02d}" for i in range(25, 30)]
    assert (await ids("?q=国贸"))[0] == ["v20"]
    assert (await ids("?kind=mall"))[0] == ["v00", "v10", "v20"]
    assert (await ids("?tag=cbd&kind=store"))[0] == ["v01", "v02", "v03", "v04"]
