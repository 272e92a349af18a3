"""The console in a real Chromium (network cut off, so map tiles fail and outlines
show on the plain background), against a real ``geopush serve``: signing in, venues in
English and Chinese, a broken upload's problems, drawing a venue, moving it into its
mall and dragging a corner, a campaign checked as it is typed, previewed, back-tested
and activated, a walker appearing in Live, its push in "why (not)?", and the results.
Each step saves its screenshot into docs/screenshots/."""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser import OfflinePage
from tests.conftest import ROOT
from tests.console.venue_files import BOW_TIE, SANLITUN, kml_bytes, polygon_feature
from tests.server.serve import free_port, serve_command, stop

SCREENSHOTS = ROOT / "docs" / "screenshots"
ADMIN_KEY = "console-test-admin-key-0123456789"
MALL = (39.9087, 116.3975)
"""The draw page's centre: a mall of 500 m around it holds what the test draws."""


@dataclass
class Server:
    base: str
    keys: dict[str, str]

    def call(self, method: str, path: str, body: Any = None, role: str = "manager") -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.base + path, data=data, method=method,
            headers={"Authorization": f"Bearer {self.keys[role]}",
                     "Content-Type": "application/json"})
        try:
            # 30 s: the first venue write starts the venue worker processes, which import
            # the geometry stack (ten seconds and more on a loaded 2-core machine).
            with urllib.request.urlopen(request, timeout=30) as resp:
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"{method} {path}: {exc.code} {exc.read()!r}") from exc


def _wait_up(base: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the server exited"
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("the server did not answer /healthz in 30 s")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    port = free_port()
    log = tmp_path_factory.mktemp("console") / "serve.log"
    env = {**os.environ, "GEOPUSH_LOG_FORMAT": "text", "GEOPUSH_TIMER_INTERVAL_S": "0.2"}
    with log.open("wb") as out:
        proc = subprocess.Popen(serve_command("--port", str(port), "--admin-key", ADMIN_KEY),
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_up(base, proc)
        srv = Server(base, {"admin": ADMIN_KEY})
        for role in ("manager", "sdk"):
            srv.keys[role] = srv.call("POST", "/v1/keys", {"role": role}, role="admin")["key"]
        srv.call("PUT", "/v1/venues/guomao-mall", _circle("guomao-mall", "国贸商城", *MALL, 500,
                                                          kind="mall", tags=["beijing"],
                                                          opening_hours="Mo-Su 10:00-22:00; "
                                                          "PH off", timezone="Asia/Shanghai",
                                                          metadata={"addr:country": "CN"}))
        # Quiet hours off: the walker's push must go out whatever the hour of the run.
        srv.call("PUT", "/v1/policy", {"policy": {"quiet_hours": None}}, role="admin")
        yield srv
    finally:
        stop(proc)


def _circle(vid: str, name: str, lat: float, lng: float, radius_m: float,
            **props: Any) -> dict[str, Any]:
    return {"type": "Feature", "id": vid, "geometry": {"type": "Point",
                                                      "coordinates": [lng, lat]},
            "properties": {"name": name, "radius_m": radius_m, **props}}


def sign_in(page: OfflinePage, server: Server, role: str = "manager") -> None:
    page.goto(server.base + "/console/sign-in?lang=en")
    page.get_by_label("Manager or admin key").fill(server.keys[role])
    page.get_by_role("button", name="Sign in").click()


def shot(page: OfflinePage, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"console-{name}.png"), full_page=True)


def test_an_sdk_key_is_refused_and_a_manager_reads_venues_in_english_and_chinese(
    offline_page: OfflinePage, server: Server,
) -> None:
    page = offline_page
    sign_in(page, server, role="sdk")
    page.get_by_role("alert").filter(has_text="An SDK key cannot sign in").wait_for()
    sign_in(page, server)
    page.get_by_role("heading", name="Venues").wait_for()
    row = page.get_by_role("row").filter(has_text="guomao-mall")
    assert "国贸商城" in row.inner_text()
    page.get_by_label("Kind").select_option("mall")
    page.get_by_role("button", name="Filter").click()
    page.get_by_role("link", name="国贸商城").wait_for()
    shot(page, "venues")
    page.get_by_role("link", name="中文").click()
    page.get_by_role("heading", name="场所").wait_for()
    assert page.get_by_role("link", name="国贸商城").is_visible()
    page.set_viewport_size({"width": 820, "height": 1180})
    shot(page, "venues-zh-tablet")


BROKEN = {"type": "FeatureCollection", "features": [
    {"type": "Feature", "properties": {"id": "sanlitun", "name": "三里屯太古里", "kind": "mall"},
     "geometry": {"type": "Polygon", "coordinates": [[
         [116.4530, 39.9340], [116.4560, 39.9340], [116.4560, 39.9365],
         [116.4530, 39.9365], [116.4530, 39.9340]]]}},
    {"type": "Feature", "properties": {"id": "bow-tie", "name": "Bow tie", "kind": "store"},
     "geometry": {"type": "Polygon", "coordinates": [[
         [116.4535, 39.9345], [116.4555, 39.9360], [116.4555, 39.9345],
         [116.4535, 39.9360], [116.4535, 39.9345]]]}},
]}


def test_a_broken_upload_shows_its_problems_on_the_map_before_importing(
    offline_page: OfflinePage, server: Server, tmp_path: Path,
) -> None:
    page = offline_page
    broken = tmp_path / "broken.geojson"
    broken.write_text(json.dumps(BROKEN, ensure_ascii=False), encoding="utf-8")
    sign_in(page, server)
    page.get_by_role("link", name="Upload a venue file").click()
    page.get_by_label("Venue file").set_input_files(str(broken))
    page.get_by_role("button", name="Check the file").click()
    problems = page.get_by_role("table", name="Problems")
    problems.get_by_role("row").filter(has_text="bow-tie").first.wait_for()
    assert "error" in problems.inner_text()
    page.wait_for_selector("path.problem", state="attached")
    assert page.locator("path.ok").count() == 1
    assert page.locator("path.problem").count() == 1
    assert server.call("GET", "/v1/venues?limit=10")["features"][-1]["id"] != "sanlitun"
    assert page.blocked and all("tile.openstreetmap.org" in u for u in page.blocked)
    shot(page, "upload")
    page.get_by_role("button", name="Import the valid venues").click()
    page.get_by_text("Imported 1 venues.").wait_for()
    assert server.call("GET", "/v1/venues/sanlitun")["properties"]["name"] == "三里屯太古里"


def test_a_broken_kml_upload_is_drawn_with_its_problem_highlighted(
    offline_page: OfflinePage, server: Server, tmp_path: Path,
) -> None:
    page = offline_page
    kml = tmp_path / "taikoo-li.kml"
    kml.write_bytes(kml_bytes([polygon_feature("taikoo-li", "太古里南区", "mall", SANLITUN),
                               polygon_feature("kml-bow-tie", "Bow tie", "store", BOW_TIE)]))
    sign_in(page, server)
    page.goto(server.base + "/console/venues/upload")
    page.get_by_label("Venue file").set_input_files(str(kml))
    page.get_by_role("button", name="Check the file").click()
    problems = page.get_by_role("table", name="Problems")
    problems.get_by_role("row").filter(has_text="kml-bow-tie").first.wait_for()
    # Drawn from the report's outlines: the browser cannot read a KML file itself.
    page.wait_for_selector("path.problem", state="attached")
    assert page.locator("path.ok").count() == 1
    assert page.locator("path.problem").count() == 1
    shot(page, "upload-kml")


def test_drawing_a_store_then_moving_it_into_the_mall(
    offline_page: OfflinePage, server: Server,
) -> None:
    page = offline_page
    sign_in(page, server)
    page.goto(server.base + "/console/venues/draw")
    box = page.locator("#map").bounding_box()
    assert box is not None
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    for dx, dy in ((-30, -20), (30, -20), (30, 20), (-30, 20)):
        page.mouse.click(cx + dx, cy + dy)
    page.get_by_label("Id", exact=True).fill("tea-shop")
    page.get_by_label("Name", exact=True).fill("茶馆 Tea house")
    page.get_by_label("Kind").select_option("store")
    page.get_by_role("button", name="Save the venue").click()
    page.get_by_role("status").filter(has_text="Saved.").wait_for()
    shot(page, "draw")
    stored = server.call("GET", "/v1/venues/tea-shop")
    assert stored["geometry"]["type"] == "Polygon"
    assert len(stored["geometry"]["coordinates"][0]) == 5
    page.get_by_role("link", name="tea-shop").click()
    page.get_by_label("Parent venue id").fill("guomao-mall")
    page.get_by_role("button", name="Move").click()
    page.get_by_role("status").filter(has_text="Saved.").wait_for()
    assert server.call("GET", "/v1/venues/tea-shop")["properties"]["parent_id"] == "guomao-mall"
    # Edit the outline: drag one corner 40 px east; the rest and the parent stay.
    before = server.call("GET", "/v1/venues/tea-shop")["geometry"]["coordinates"][0]
    page.get_by_role("link", name="Edit the outline").click()
    page.locator("form#draw[data-loaded=true]").wait_for()
    corner = page.locator(".vertex").first
    assert page.locator(".vertex").count() == 4
    assert page.get_by_label("Parent venue id").input_value() == "guomao-mall"
    box = corner.bounding_box()
    assert box is not None
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 20, y, steps=4)
    page.mouse.move(x + 40, y, steps=4)
    page.mouse.up()
    page.get_by_role("button", name="Save the venue").click()
    page.get_by_role("status").filter(has_text="Saved.").wait_for()
    after = server.call("GET", "/v1/venues/tea-shop")
    ring = after["geometry"]["coordinates"][0]
    assert ring[0][0] > before[0][0] and ring[1:4] == before[1:4]
    assert after["properties"]["parent_id"] == "guomao-mall"


def test_a_circle_venue_can_be_drawn_with_the_keyboard_alone(
    offline_page: OfflinePage, server: Server,
) -> None:
    page = offline_page
    sign_in(page, server)
    page.goto(server.base + "/console/venues/draw")
    page.get_by_label("Circle").focus()
    page.keyboard.press("Space")
    page.locator("#map").focus()
    for _ in range(3):
        page.keyboard.press("ArrowRight")  # Leaflet pans the map by keyboard
    page.get_by_role("button", name="Add the map's centre").focus()
    page.keyboard.press("Enter")
    page.get_by_label("Radius (m)").fill("40")
    page.get_by_label("Id", exact=True).fill("kiosk")
    page.get_by_label("Name", exact=True).fill("报亭 Kiosk")
    page.get_by_label("Kind").select_option("store")
    page.get_by_role("button", name="Save the venue").focus()
    page.keyboard.press("Enter")
    page.get_by_role("status").filter(has_text="Saved.").wait_for()
    kiosk = server.call("GET", "/v1/venues/kiosk")
    assert kiosk["geometry"]["type"] == "Point" and kiosk["properties"]["radius_m"] == 40
    assert kiosk["geometry"]["coordinates"][0] > MALL[1]  # east of where the map opened


def test_the_mall_shows_its_week_of_opening_hours_as_campaigns_read_them(
    offline_page: OfflinePage, server: Server,
) -> None:
    page = offline_page
    sign_in(page, server)
    page.goto(server.base + "/console/venues/guomao-mall")
    page.get_by_label("Week from").fill("2026-12-28")
    page.get_by_role("button", name="Show").click()
    week = page.locator("#week tbody tr")
    assert week.count() == 7
    new_year = week.filter(has_text="2027-01-01")
    assert new_year.locator("rect.open").count() == 0  # PH off: New Year's Day, China
    assert new_year.locator("rect.closed").count() >= 1
    assert "New Year" in new_year.inner_text()
    assert week.filter(has_text="2026-12-31").locator("rect.open").count() == 1
    page.wait_for_selector("path.leaflet-interactive", state="attached")
    shot(page, "venue-hours")


CAMPAIGN: dict[str, Any] = {
    "id": "tea-welcome", "name": "茶馆欢迎 Tea welcome", "trigger": {"event": "enter"},
    "venues": {"ids": ["guomao-mall"]}, "status": "draft",
    "channels": ["inbox", "fcm", "apns"],
    "schedule": {"respect_opening_hours": False},
    "variants": [
        {"id": "a", "title": "{{ user.first_name or '朋友' }}，欢迎光临",
         "body": "{{ venue.name }} 今日茶饮八折"},
        {"id": "b", "title": "Welcome to {{ venue.name }}", "body": "Tea is 20% off today"},
    ],
}


def test_a_campaign_is_checked_as_typed_previewed_saved_and_activated(
    offline_page: OfflinePage, server: Server,
) -> None:
    page = offline_page
    sign_in(page, server)
    page.get_by_role("link", name="Campaigns").click()
    page.get_by_role("link", name="New campaign").click()
    raw = page.get_by_label("Campaign as JSON")
    bad = {**CAMPAIGN, "variants": [{**CAMPAIGN["variants"][0], "weight": -1}]}
    raw.fill(json.dumps(bad, ensure_ascii=False))
    page.locator("#check").filter(has_text="variants[0].weight").wait_for()
    assert raw.get_attribute("aria-invalid") == "true"
    raw.fill(json.dumps(CAMPAIGN, ensure_ascii=False, indent=2))
    page.locator("#check").filter(has_text="Valid.").wait_for()
    previews = page.locator("#previews tbody tr")
    assert previews.count() == 8  # 2 variants x 4 sample people
    assert "小红，欢迎光临" in page.locator("#previews").inner_text()
    assert '"campaign_id": "tea-welcome"' in page.locator("#payloads").inner_text()
    fcm = page.locator("section.channel-payload[data-channel=fcm]").first
    assert '"token": "SAMPLE-fcm-registration-token"' in fcm.inner_text()
    assert "Sample address, not a real device or person" in fcm.inner_text()
    apns = page.locator("section.channel-payload[data-channel=apns]").first
    assert '"thread-id": "tea-welcome"' in apns.inner_text()
    assert "小红，欢迎光临" in apns.inner_text()
    # Two shoppers walked in earlier, before any campaign was live.
    now = time.time()
    server.call("POST", "/v1/pings", {"pings": [
        {"user_id": f"earlier-{n}", "ts": now - 120 + 10 * i + n, "lat": MALL[0],
         "lng": MALL[1] + 0.0003 * n, "accuracy_m": 10} for n in range(2) for i in range(2)]},
        role="sdk")
    page.get_by_label("Days").fill("1")
    page.get_by_role("button", name="Run the back-test").click()
    report = page.locator("#backtest-report")
    report.locator("dd[data-key=pushes]").filter(has_text="2").wait_for()
    assert report.locator("dd[data-key=users]").inner_text() == "2"
    assert server.call("GET", "/v1/users/earlier-0/decisions")["decisions"][0]["chosen"] is None
    shot(page, "campaign-backtest")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url("**/console/campaigns/tea-welcome")
    assert page.locator("#campaign-status").inner_text() == "draft"
    page.get_by_role("button", name="Activate").click()
    page.locator("#campaign-status").filter(has_text="active").wait_for()
    assert server.call("GET", "/v1/campaigns/tea-welcome")["status"] == "active"
    assert page.get_by_role("button", name="Activate").is_disabled()
    assert page.get_by_role("button", name="Pause").is_enabled()
    page.locator("#check").filter(has_text="Valid.").wait_for()
    shot(page, "campaign")


TEA_YAML = """\
id: tea-form
name: 茶馆午后 Tea afternoons
status: draft
trigger:
  scheduled:
    times: [10:00, 15:00]
venues:
  ids: [guomao-mall]
variants:
  - id: a
    title: Afternoon tea
    body: "{{ venue.name }}: tea is 20% off"
"""


def test_a_campaign_is_built_with_the_form_its_json_following_and_read_back_from_yaml(
    offline_page: OfflinePage, server: Server,
) -> None:
    page = offline_page
    sign_in(page, server)
    page.goto(server.base + "/console/campaigns/new")
    raw = page.get_by_label("Campaign as JSON or YAML")
    page.locator("#check").filter(has_text="Valid.").wait_for()
    page.get_by_label("Campaign id").fill("tea-form")
    page.get_by_label("Campaign name").fill("茶馆 Tea by the form")
    page.get_by_label("Trigger").select_option(label="Staying in a venue")
    page.get_by_label("Staying at least (s)").fill("300")
    page.get_by_label("Venue kinds (comma list)").fill("")
    page.get_by_label("Venue ids (comma list)").fill("guomao-mall")
    page.get_by_label("Audience: any of the tags (comma list)").fill("tea, beijing")
    page.get_by_role("checkbox", name="fcm").check()
    first = page.get_by_role("group", name="Variant 1")
    first.get_by_label("Title").fill("Tea time at {{ venue.name }}")
    page.get_by_role("button", name="Add a variant").click()
    second = page.get_by_role("group", name="Variant 2")
    second.get_by_label("Body").fill("两杯八折 Two teas, 20% off")
    second.get_by_label("Title").fill("Bring a friend")
    expect(page.locator("#previews")).to_contain_text("Bring a friend")
    page.locator("#check").filter(has_text="Valid.").wait_for()
    doc = json.loads(raw.input_value())
    assert doc["trigger"] == {"event": "dwell", "dwell_s": 300}
    assert doc["venues"] == {"ids": ["guomao-mall"]}
    assert doc["audience"] == {"any_of_tags": ["tea", "beijing"]}
    assert doc["channels"] == ["inbox", "fcm"]
    assert [v["title"] for v in doc["variants"]] == ["Tea time at {{ venue.name }}",
                                                    "Bring a friend"]
    assert page.locator("#previews tbody tr").count() == 8  # 2 variants x 4 people
    # A control group over 100 % is named beside its field, as the API names it.
    control = page.get_by_label("Control group (%)")
    control.fill("150")
    page.locator("#err-f-control").filter(has_text="control_pct").wait_for()
    assert control.get_attribute("aria-invalid") == "true"
    assert "control_pct" in page.locator("#check").inner_text()
    control.fill("10")
    page.locator("#check").filter(has_text="Valid.").wait_for()
    assert page.locator("#err-f-control").count() == 0
    # Editing the JSON refills the form; the fields the form does not show are kept.
    doc = json.loads(raw.input_value())
    raw.fill(json.dumps({**doc, "name": "Tea, edited as JSON", "offer_ttl_s": 900,
                         "status": "draft"},
                        ensure_ascii=False, indent=2))
    expect(page.get_by_label("Campaign name")).to_have_value("Tea, edited as JSON")
    page.get_by_label("Priority").fill("3")
    assert json.loads(raw.input_value())["offer_ttl_s"] == 900
    shot(page, "campaign-form")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url("**/console/campaigns/tea-form")
    saved = server.call("GET", "/v1/campaigns/tea-form")
    assert (saved["priority"], saved["control_pct"], saved["offer_ttl_s"]) == (3, 10, 900)
    assert saved["trigger"]["dwell_s"] == 300 and saved["channels"] == ["inbox", "fcm"]


def test_a_campaign_typed_as_yaml_refills_the_form_and_saves(
    offline_page: OfflinePage, server: Server,
) -> None:
    page = offline_page
    sign_in(page, server)
    page.goto(server.base + "/console/campaigns/tea-form")
    raw = page.get_by_label("Campaign as JSON or YAML")
    page.locator("#check").filter(has_text="Valid.").wait_for()
    raw.fill(TEA_YAML)
    expect(page.get_by_label("Trigger")).to_have_value("scheduled")
    expect(page.get_by_label("Local times (comma list)")).to_have_value("10:00, 15:00")
    raw.fill(TEA_YAML.replace("[10:00, 15:00]", "[10:00, 15:00"))
    page.locator("#check").filter(has_text="line 7").wait_for()
    raw.fill(TEA_YAML)
    page.locator("#check").filter(has_text="Valid.").wait_for()
    page.get_by_role("button", name="Save").click()
    page.locator("#status").filter(has_text="Saved").wait_for()
    saved = server.call("GET", "/v1/campaigns/tea-form")
    assert saved["trigger"]["scheduled"]["times"] == ["10:00", "15:00"]
    assert saved["name"] == "茶馆午后 Tea afternoons" and saved["status"] == "draft"


def test_a_walker_appears_in_live_while_the_page_is_open(
    offline_page: OfflinePage, server: Server,
) -> None:
    page = offline_page
    sign_in(page, server)
    page.get_by_role("link", name="Live").click()
    page.get_by_label("Venue").select_option("guomao-mall")
    page.get_by_role("button", name="Show").click()
    page.locator("#updated").filter(has_text="UTC").wait_for()
    assert page.locator("#inside").filter(has_text="walker-live").count() == 0
    now = time.time()
    server.call("POST", "/v1/pings", {"pings": [
        {"user_id": "walker-live", "ts": now - 10 + i * 5, "lat": MALL[0] + 0.0005,
         "lng": MALL[1], "accuracy_m": 15} for i in range(2)]}, role="sdk")
    url = page.url
    page.locator("#inside tbody tr").filter(has_text="walker-live").wait_for(timeout=10_000)
    assert page.url == url  # no reload: the page polled
    assert int(page.locator("#entries").inner_text()) >= 1
    shot(page, "live")


def test_a_walkers_push_shows_in_why_not_and_in_the_results(
    offline_page: OfflinePage, server: Server,
) -> None:
    server.call("PUT", "/v1/campaigns/tea-welcome", {**CAMPAIGN, "status": "active"})
    now = time.time()
    pings = [{"user_id": "walker-7", "ts": now - 20 + i * 10, "lat": MALL[0], "lng": MALL[1],
              "accuracy_m": 10} for i in range(2)]
    answer = server.call("POST", "/v1/pings", {"pings": pings}, role="sdk")
    [delivery] = answer["deliveries"]
    server.call("POST", f"/v1/deliveries/{delivery['id']}/feedback", {"kind": "clicked"})
    _wait_sent(server, "tea-welcome")
    page = offline_page
    sign_in(page, server)
    page.get_by_role("link", name="Why (not)?").click()
    page.get_by_label("User id").fill("walker-7")
    page.get_by_role("button", name="Look up").click()
    decision = page.locator("section.decision").filter(has_text="guomao-mall")
    decision.wait_for()
    assert decision.locator("tr.sent").filter(has_text="tea-welcome").count() == 1
    shot(page, "why")
    page.goto(server.base + "/console/campaigns/tea-welcome/results")
    ctr = page.locator("#ctr").inner_text()
    assert "100.0% (1/1)" in ctr or "(0/0)" not in ctr
    assert page.locator("#status-time rect.sent").count() == 1
    assert page.locator("#channel-time rect.inbox").count() == 1
    csv = page.request.get(server.base + "/console/campaigns/tea-welcome/results.csv")
    assert csv.ok and csv.text().startswith("campaign_id,variant_id,")
    assert f"tea-welcome,{delivery['variant_id']}," in csv.text()
    shot(page, "results")


def _wait_sent(server: Server, campaign_id: str) -> None:
    """Until the outbox has handed the campaign's push to its channel (the in-app inbox)."""
    deadline = time.monotonic() + 10
    while server.call("GET", f"/v1/campaigns/{campaign_id}/stats")["sends"] < 1:
        assert time.monotonic() < deadline, "the push was not sent in 10 s"
        time.sleep(0.1)


@pytest.mark.parametrize(("width", "height"), [(1280, 800), (820, 1180)])
def test_every_page_fits_the_screen_width_in_chinese(
    offline_page: OfflinePage, server: Server, width: int, height: int,
) -> None:
    page = offline_page
    page.set_viewport_size({"width": width, "height": height})
    sign_in(page, server)
    page.goto(server.base + "/console/venues?lang=zh")
    for path in ("/console/venues", "/console/venues/upload", "/console/venues/draw",
                 "/console/venues/guomao-mall", "/console/live", "/console/why?user=walker-7",
                 "/console/campaigns", "/console/campaigns/new"):
        page.goto(server.base + path)
        assert page.locator("html").get_attribute("lang") == "zh-CN"
        overflow = page.evaluate("document.documentElement.scrollWidth")
        assert overflow <= width, (path, overflow)
    if width < 1000:
        page.goto(server.base + "/console/venues/guomao-mall")
        page.wait_for_selector("path.leaflet-interactive", state="attached")
        shot(page, "venue-zh-tablet")
