"""Links between console pages for ids that hold a `/`, as every OpenStreetMap venue id
does (`osm:way/289767497`): each is one percent-encoded path segment that opens its page."""

from __future__ import annotations

import re

import pytest

from server.auth import Role
from tests.console.conftest import Api
from tests.console.test_security import sign_in
from tests.server.api.conftest import blockbuster, campaign_body, venue_feature  # noqa: F401

pytestmark = pytest.mark.asyncio(loop_scope="session")

MALL, STORE = "osm:way/289767497", "osm:node/2001532381"


async def _links(memory_api: Api, page: str, prefix: str) -> set[str]:
    signed = await sign_in(memory_api)
    resp = await memory_api.client.get(page, headers=signed.headers)
    assert resp.status == 200, await resp.text()
    links = set(re.findall(rf'href="({prefix}[^"?]+)"', await resp.text()))
    for link in links:
        target = await memory_api.client.get(link, headers=signed.headers)
        assert target.status == 200, f"{link}: {target.status}"
    return links


async def test_venue_ids_with_a_slash_link_to_their_pages(memory_api: Api) -> None:
    for venue_id, parent_id in ((MALL, None), (STORE, MALL)):
        await memory_api.call("PUT", f"/v1/venues/{venue_id.replace('/', '%2F')}",
                              expect=201, json_body=venue_feature(venue_id, parent_id=parent_id))
    listed = await _links(memory_api, "/console/venues", "/console/venues/osm")
    assert listed == {"/console/venues/osm%3Away%2F289767497",
                      "/console/venues/osm%3Anode%2F2001532381"}
    parent = await _links(memory_api, "/console/venues/osm%3Anode%2F2001532381",
                          "/console/venues/osm")
    assert parent == {"/console/venues/osm%3Away%2F289767497"}


async def test_campaign_ids_with_a_slash_link_to_their_pages_and_results(
        memory_api: Api) -> None:
    await memory_api.call("PUT", "/v1/venues/senate", expect=201, json_body=venue_feature())
    await memory_api.call("POST", "/v1/campaigns", expect=201,
                          json_body=campaign_body("forum/welcome"),
                          role=Role.MANAGER)
    links = await _links(memory_api, "/console/campaigns", "/console/campaigns/forum")
    assert links == {"/console/campaigns/forum%2Fwelcome",
                     "/console/campaigns/forum%2Fwelcome/results"}
