"""A campaign typed as YAML in the console: the server reads it (times like 10:00 stay
times), checks it with the API's own schema, hands back the document the console saves,
and names the line of a YAML mistake. On both stores."""

from __future__ import annotations

from typing import Any

import pytest

from tests.console.conftest import Api
from tests.console.test_security import sign_in
from tests.server.api.conftest import blockbuster  # noqa: F401

pytestmark = pytest.mark.asyncio(loop_scope="session")

TEA_AFTERNOONS = """\
# Two afternoon pushes to tea lovers near Sanlitun.
id: tea-afternoons
name: 下午茶 Afternoon tea
status: draft
trigger:
  scheduled:
    times: [10:00, 15:00]
venues:
  ids: [sanlitun-taikoo-li]
audience:
  any_of_tags: [tea]
channels: [inbox, fcm]
priority: 5
variants:
  - id: a
    title: "{{ user.first_name or '朋友' }}，下午茶时间"
    body: 三里屯太古里 · tea is 20% off until 17:00
"""


async def _check(api: Api, text: str, content_type: str = "application/yaml") -> Any:
    signed = await sign_in(api)
    resp = await api.client.post(
        "/console/api/campaigns/check", data=text.encode(),
        headers={**signed.headers, "X-CSRF-Token": signed.csrf, "Content-Type": content_type})
    return resp.status, await resp.json()


async def test_a_yaml_campaign_is_checked_and_the_document_it_hands_back_saves(
    api: Api,
) -> None:
    status, answer = await _check(api, TEA_AFTERNOONS)
    assert status == 200, answer
    document = answer["document"]
    assert document["trigger"] == {"scheduled": {"times": ["10:00", "15:00"]}}
    assert answer["campaign"]["trigger"]["scheduled"]["times"] == ["10:00", "15:00"]
    assert len(answer["previews"]) == 4  # one variant for the 4 sample people
    assert "下午茶时间" in answer["previews"][0]["title"]
    signed = await sign_in(api)
    resp = await api.client.put("/console/api/campaigns/tea-afternoons", json=document,
                                headers={**signed.headers, "X-CSRF-Token": signed.csrf})
    assert resp.status == 201, await resp.text()
    _, saved = await api.call("GET", "/v1/campaigns/tea-afternoons", expect=200)
    assert saved["name"] == "下午茶 Afternoon tea"
    assert saved["audience"]["any_of_tags"] == ["tea"] and saved["priority"] == 5


async def test_a_yaml_campaign_breaking_the_schema_names_the_field(api: Api) -> None:
    status, answer = await _check(api, TEA_AFTERNOONS.replace("priority: 5", "priority: high"))
    assert status == 422
    assert answer["error"]["field"] == "priority"


async def test_a_yaml_mistake_is_a_400_naming_its_line(api: Api) -> None:
    broken = TEA_AFTERNOONS.replace("times: [10:00, 15:00]", "times: [10:00, 15:00")
    status, answer = await _check(api, broken)
    assert status == 400
    assert answer["error"]["code"] == "invalid_yaml"
    assert answer["error"]["field"] == "line 8"
    assert "line 8 column 7" in answer["error"]["message"]


async def test_yaml_aliases_and_values_without_a_json_form_are_refused(api: Api) -> None:
    status, answer = await _check(api, "id: x\nname: &n tea\nvariants: *n\n")
    assert status == 400 and "aliases" in answer["error"]["message"]
    assert answer["error"]["field"] == "line 3"
    status, answer = await _check(api, TEA_AFTERNOONS.replace("priority: 5", "priority: .nan"))
    assert status == 422 and answer["error"]["field"] == "priority"


async def test_the_text_yaml_type_is_read_as_yaml_and_json_stays_json(api: Api) -> None:
    status, answer = await _check(api, TEA_AFTERNOONS, content_type="text/yaml")
    assert status == 200, answer
    status, answer = await _check(api, TEA_AFTERNOONS, content_type="application/json")
    assert status == 400 and answer["error"]["code"] == "invalid_json"
