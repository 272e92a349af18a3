"""Behaviour events in scenarios: from a CSV, inline and generated per user; replayed on
the virtual clock so that learned tags reach audiences (a user becomes ``mother_baby``
from a purchase) and behaviour triggers fire, or are cancelled by the purchase, through
``decide``; and the simulator decides as the service does when the same events are
posted over HTTP."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from server.api.context import CORES
from server.auth import Role
from server.behaviour_service import fire_all_behaviour_triggers
from server.cli.__main__ import main
from server.cli.scenario_files import ScenarioFileError, load_scenario
from server.scheduler import schedule_round
from tests.server.api.conftest import NOON_UTC, Api, api, clock  # noqa: F401 - fixtures
from tests.server.conftest import TENANT, memory_store, pg_schema, pg_store, store  # noqa: F401
from triggers.decisions import Profile
from triggers.decisions.records import Decision
from triggers.simulation import Scenario, SimulationResult, check, simulate
from triggers.simulation.behaviour import scenario_events

ROOT = Path(__file__).resolve().parents[2]
MALL = ROOT / "fixtures" / "scenarios" / "beijing_wudaokou_mall.geojson"
HOUR = 3600.0
DAY = 86_400.0
BEIJING = ZoneInfo("Asia/Shanghai")

MOTHER_BABY_DAILY = """
  - id: mother-baby-daily
    trigger: {scheduled: {times: ["10:00", "15:00"]}}
    audience: {any_of_tags: [mother_baby]}
    variants: [{id: warm, title: "早安", body: "给宝宝换上柔软的新衣。",
                image_url: "https://images.example.com/mother-baby/warm.jpg"}]
"""

STILL_THINKING = """
  - id: still-thinking
    trigger:
      behaviour: {kind: view, item: {category: baby}, delay_s: 3600,
                  unless: {kind: purchase, same_item: true, within_s: 3600}}
    variants: [{id: a, title: "Still thinking about {{ item.name }}?",
                body: "{{ item.name }}: 10% off today only"}]
"""


def scenario_file(tmp_path: Path, body: str, *, name: str = "s.yaml") -> Path:
    """A scenario in Beijing over 28-29 November 2026 with ``body`` appended."""
    path = tmp_path / name
    path.write_text(f"""
name: behaviour test
start: 2026-11-28T00:00:00+08:00
end: 2026-11-30T00:00:00+08:00
timezone: Asia/Shanghai
venues: {MALL}
policy: {{default_timezone: Asia/Shanghai}}
{body}""", encoding="utf-8")
    return path


def pushes(result: SimulationResult, user: str) -> list[tuple[str, str]]:
    """(Beijing day and time, campaign) of each push to ``user``."""
    return [(datetime.fromtimestamp(d.at, BEIJING).strftime("%d %H:%M"), d.campaign_id)
            for d in result.deliveries if d.user_id == user]


def all_met(scenario: Scenario, result: SimulationResult) -> bool:
    return all(outcome.met for outcome in check(scenario.spec.expect, result))


def test_purchases_from_a_csv_make_users_mother_baby_for_a_scheduled_campaign(
    tmp_path: Path,
) -> None:
    (tmp_path / "buys.csv").write_text(
        "user_id,ts,kind,item_id,category,price\n"
        "mei,2026-11-20T19:00:00+08:00,purchase,formula-800g,baby,268\n"
        "jun,2026-11-20T19:00:00+08:00,purchase,earbuds,electronics,899\n"
        "wei,2026-11-20T19:00:00+08:00,view,formula-800g,baby,\n", encoding="utf-8")
    scenario = load_scenario(scenario_file(tmp_path, f"""
events: buys.csv
campaigns:{MOTHER_BABY_DAILY}"""))
    result = simulate(scenario)
    assert pushes(result, "mei") == [("28 10:00", "mother-baby-daily"),
                                     ("28 15:00", "mother-baby-daily"),
                                     ("29 10:00", "mother-baby-daily"),
                                     ("29 15:00", "mother-baby-daily")]
    # An electronics purchase and a mere view of formula are no baby purchase.
    assert {d.user_id for d in result.decisions} == {"mei"}


def test_inline_events_tag_a_user_from_the_moment_of_the_purchase(tmp_path: Path) -> None:
    scenario = load_scenario(scenario_file(tmp_path, f"""
events:
  - {{user_id: fang, ts: "2026-11-28T12:30:00+08:00", kind: purchase,
     item: {{id: diapers-s, name: "Diapers, size S", category: diapers, price: 129}}}}
campaigns:{MOTHER_BABY_DAILY}"""))
    result = simulate(scenario)
    # Not yet mother_baby at 10:00 on the 28th (no decision: not in the audience).
    assert pushes(result, "fang") == [("28 15:00", "mother-baby-daily"),
                                      ("29 10:00", "mother-baby-daily"),
                                      ("29 15:00", "mother-baby-daily")]


def test_generated_events_are_made_every_interval_and_deterministically(
    tmp_path: Path,
) -> None:
    body = f"""
events:
  - user_ids: [lin, anna]
    generate:
      - {{kind: purchase, category: baby, item_id: onesie-66, every_s: 172800,
         from: "2026-11-26T11:00:00+08:00", until: "2026-11-29T00:00:00+08:00"}}
campaigns:{MOTHER_BABY_DAILY}"""
    first = load_scenario(scenario_file(tmp_path, body))
    again = load_scenario(scenario_file(tmp_path, body, name="t.yaml"))
    assert first.spec.event_generators == again.spec.event_generators
    made = scenario_events(first.spec, lambda g: (), first.start_ts)
    lin = [(e.ts, e.event_id, e.item.id if e.item else None) for e in made
           if e.user_id == "lin"]
    start = datetime(2026, 11, 26, 11, 0, tzinfo=BEIJING).timestamp()
    assert lin == [(start, "gen:lin:0:0", "onesie-66"),
                   (start + 2 * DAY, "gen:lin:0:1", "onesie-66")]  # the 30th is past until
    assert len(simulate(first).deliveries) == 8  # lin and anna, 10:00 and 15:00, two days


def test_a_crowd_generates_events_for_each_of_its_users(tmp_path: Path) -> None:
    scenario = load_scenario(scenario_file(tmp_path, f"""
users:
  - count: 3
    id_prefix: mum-
    generate: {{route: ["near:VENUE~300", "entrance", "venue:VENUE", "wait:600"]}}
    events: {{generate: [{{kind: purchase, category: maternity, every_s: 86400, count: 1}}]}}
campaigns:{MOTHER_BABY_DAILY}""".replace("VENUE", _a_venue())))
    result = simulate(scenario)
    assert sorted({d.user_id for d in result.deliveries}) == ["mum-1", "mum-2", "mum-3"]


def _a_venue() -> str:
    data = json.loads(MALL.read_text(encoding="utf-8"))
    return str(data["features"][0]["properties"]["id"])


def test_a_behaviour_trigger_fires_after_its_delay_with_the_item(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    path = scenario_file(tmp_path, f"""
events:
  - {{user_id: mum-1, ts: "2026-11-28T12:00:00+08:00", kind: view,
     item: {{id: stroller-9, name: City stroller, category: baby}}}}
campaigns:{STILL_THINKING}
expect:
  - {{user_id: mum-1, campaign_id: still-thinking, at: "2026-11-28T13:00:00+08:00",
     within_s: 1, title_contains: City stroller}}""")
    assert main(["simulate", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    (decision,) = out["decisions"]
    assert (decision["event"], decision["venue_id"]) == ("behaviour", None)
    assert decision["chosen"]["body"] == "City stroller: 10% off today only"
    scenario = load_scenario(path)
    assert all_met(scenario, simulate(scenario))


def test_a_purchase_of_the_item_cancels_the_behaviour_trigger(tmp_path: Path) -> None:
    scenario = load_scenario(scenario_file(tmp_path, f"""
events:
  - {{user_id: mum-1, ts: "2026-11-28T12:00:00+08:00", kind: view,
     item: {{id: stroller-9, name: City stroller, category: baby}}}}
  - {{user_id: mum-1, ts: "2026-11-28T12:10:00+08:00", kind: purchase,
     item: {{id: stroller-9, name: City stroller, category: baby, price: 1899}}}}
campaigns:{STILL_THINKING}
expect:
  - {{user_id: mum-1, none: true}}
  - {{user_id: mum-1, campaign_id: still-thinking, reason: cancelled_by_follow_up}}"""))
    result = simulate(scenario)
    (decision,) = result.decisions
    assert decision.chosen is None
    assert decision.decided_at == scenario.start_ts + 12 * HOUR + 600  # at the purchase
    assert "purchase of stroller-9" in (decision.considered[0].detail or "")
    assert all_met(scenario, result)


def test_scenario_tag_rules_replace_the_defaults(tmp_path: Path) -> None:
    scenario = load_scenario(scenario_file(tmp_path, f"""
tag_rules:
  - {{tag: mother_baby, any: [{{kind: purchase, category: baby, min_count: 2,
                               within_days: 30}}]}}
events:
  - {{user_id: mei, ts: "2026-11-20T10:00:00+08:00", kind: purchase,
     item: {{id: formula-800g, category: baby}}}}
  - {{user_id: lin, ts: "2026-11-20T10:00:00+08:00", kind: purchase,
     item: {{id: formula-800g, category: baby}}}}
  - {{user_id: lin, ts: "2026-11-25T10:00:00+08:00", kind: purchase,
     item: {{id: onesie-66, category: baby}}}}
campaigns:{MOTHER_BABY_DAILY}"""))
    result = simulate(scenario)
    assert {d.user_id for d in result.deliveries} == {"lin"}  # mei bought only once


def test_a_bad_event_file_names_its_line_and_column(tmp_path: Path) -> None:
    (tmp_path / "buys.csv").write_text(
        "user_id,ts,kind,item_id,category,price\n"
        "mei,2026-11-20T19:00:00+08:00,purchase,formula-800g,baby,-3\n", encoding="utf-8")
    with pytest.raises(ScenarioFileError) as caught:
        load_scenario(scenario_file(tmp_path, "events: buys.csv\n"))
    assert (caught.value.file.endswith("buys.csv"), caught.value.line, caught.value.path) == (
        True, 2, "price")


def test_a_bad_inline_event_names_its_yaml_path_and_line(tmp_path: Path) -> None:
    path = scenario_file(tmp_path, """
events:
  - {user_id: mei, ts: "2026-11-20T19:00:00+08:00", kind: purchase}
  - {user_id: lin, ts: "2026-11-20T19:00:00+08:00", kind: purchase,
     item: {id: x, price: -1}}
""")
    with pytest.raises(ScenarioFileError) as caught:
        load_scenario(path)
    assert caught.value.path == "events[1].item.price"
    assert caught.value.line == 12


def test_a_generator_needs_someone_to_generate_for(tmp_path: Path) -> None:
    path = scenario_file(tmp_path, """
events:
  - {generate: [{kind: purchase, every_s: 60}]}
""")
    with pytest.raises(ScenarioFileError) as caught:
        load_scenario(path)
    assert caught.value.path == "events[0]"
    assert "user_id or user_ids" in caught.value.message


# --------------------------------------------------------------------------- the service

EVENTS: list[dict[str, Any]] = [
    # mum-1 views a stroller and never buys it: the offer an hour later.
    {"user_id": "mum-1", "ts": NOON_UTC, "kind": "view",
     "item": {"id": "stroller-9", "name": "City stroller", "category": "baby"}},
    # mum-2 views it and buys it ten minutes later: cancelled.
    {"user_id": "mum-2", "ts": NOON_UTC + 60, "kind": "view",
     "item": {"id": "stroller-9", "name": "City stroller", "category": "baby"}},
    {"user_id": "mum-2", "ts": NOON_UTC + 660, "kind": "purchase",
     "item": {"id": "stroller-9", "name": "City stroller", "category": "baby"}},
    # mum-3 views two baby items a second apart: one offer, the other stopped by min_gap.
    {"user_id": "mum-3", "ts": NOON_UTC + 120, "kind": "view",
     "item": {"id": "cot-1", "name": "Travel cot", "category": "baby"}},
    {"user_id": "mum-3", "ts": NOON_UTC + 121, "kind": "view",
     "item": {"id": "bottle-2", "name": "Glass bottle", "category": "baby"}},
    # dad-1 views a racket: outside the filter.
    {"user_id": "dad-1", "ts": NOON_UTC + 180, "kind": "view",
     "item": {"id": "racket", "name": "Racket", "category": "sports"}},
]


def _decided(*fields: Any) -> tuple[Any, ...]:
    """(user, event, venue, at, decided_at, chosen, reasons), times to the millisecond."""
    user, event, venue, at, decided_at, chosen, reasons = fields
    return (user, event, venue, round(at, 3), round(decided_at, 3), chosen, tuple(reasons))


def _of_sim(d: Decision) -> tuple[Any, ...]:
    chosen = None if d.chosen is None else (d.chosen.campaign_id, d.chosen.title, d.chosen.body)
    return _decided(d.user_id, d.event, d.venue_id, d.at, d.decided_at, chosen,
                    [(c.campaign_id, str(c.reason)) for c in d.considered])


def _of_api(d: dict[str, Any]) -> tuple[Any, ...]:
    c = d["chosen"]
    chosen = None if c is None else (c["campaign_id"], c["title"], c["body"])
    return _decided(d["user_id"], d["event"], d["venue_id"], d["at"], d["decided_at"], chosen,
                    [(x["campaign_id"], x["reason"]) for x in d["considered"]])


@pytest.mark.asyncio(loop_scope="session")
async def test_the_simulator_decides_as_the_service_on_the_same_events(
    api: Api, tmp_path: Path,  # noqa: F811 - the fixture imported above
) -> None:
    behaviour = {"kind": "view", "item": {"category": "baby"}, "delay_s": HOUR,
                 "unless": {"kind": "purchase", "same_item": True, "within_s": HOUR}}
    campaign: dict[str, Any] = {
        "id": "still-thinking", "status": "active", "trigger": {"behaviour": behaviour},
        "variants": [{"id": "a", "title": "Still thinking about {{ item.name }}?",
                      "body": "{{ item.name }}: 10% off today only"}]}
    await api.call("POST", "/v1/campaigns", json_body=campaign, expect=201)
    for event in EVENTS:  # each posted when it happens
        api.clock.now = event["ts"]
        _, body = await api.call("POST", "/v1/events", role=Role.SDK,
                                 json_body={"events": [event]}, expect=200)
        assert body["rejected"] == []
    # The timer round at each instant a trigger falls due (the simulator decides a
    # trigger at its due time; the service at the first round after it).
    cores = api.client.app[CORES]
    for due in sorted({e["ts"] + HOUR for e in EVENTS if e["kind"] == "view"}):
        api.clock.now = due
        await fire_all_behaviour_triggers(api.store, cores, TENANT, due)
    served: list[tuple[Any, ...]] = []
    for user in ("mum-1", "mum-2", "mum-3", "dad-1"):
        _, body = await api.call("GET", f"/v1/users/{user}/decisions", role=Role.MANAGER,
                                 expect=200)
        served.extend(_of_api(d) for d in body["decisions"])

    path = tmp_path / "same.yaml"
    path.write_text(json.dumps({
        "name": "the service's events", "start": _utc(NOON_UTC - 60),
        "end": _utc(NOON_UTC + 2 * HOUR),
        "venues": str(MALL), "events": EVENTS, "campaigns": [campaign],
        "batch_s": 60}), encoding="utf-8")
    simulated = [_of_sim(d) for d in simulate(load_scenario(path)).decisions]
    assert sorted(simulated) == sorted(served)
    reasons = sorted(r for d in simulated for _, r in d[6])
    assert reasons == ["cancelled_by_follow_up", "min_gap", "sent", "sent"]


def _utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, ZoneInfo("UTC")).isoformat()


@pytest.mark.asyncio(loop_scope="session")
async def test_a_purchase_posted_to_the_service_puts_the_user_in_a_scheduled_audience(
    api: Api, tmp_path: Path,  # noqa: F811 - the fixture imported above
) -> None:
    campaign: dict[str, Any] = {
        "id": "mother-baby-daily", "status": "active",
        "trigger": {"scheduled": {"times": ["10:00"]}},
        "audience": {"any_of_tags": ["mother_baby"]},
        "variants": [{"id": "warm", "title": "早安", "body": "给宝宝换上柔软的新衣。"}]}
    profiles = [{"user_id": u, "attributes": {"timezone": "Asia/Shanghai"}}
                for u in ("mei", "jun")]
    events = [{"user_id": "mei", "ts": NOON_UTC, "kind": "purchase",
               "item": {"id": "formula-800g", "category": "baby"}},
              {"user_id": "jun", "ts": NOON_UTC, "kind": "purchase",
               "item": {"id": "earbuds", "category": "electronics"}}]
    await api.call("POST", "/v1/campaigns", json_body=campaign, expect=201)
    for profile in profiles:
        await api.store.put_profile(TENANT, Profile.model_validate(profile))
    _, body = await api.call("POST", "/v1/events", role=Role.SDK,
                             json_body={"events": events}, expect=200)
    assert body["rejected"] == []
    ten_beijing = NOON_UTC + 14 * HOUR  # 2026-03-03T10:00+08:00
    api.clock.now = ten_beijing
    done = await schedule_round(api.store, api.client.app[CORES], TENANT, ten_beijing,
                                list_users=True)
    assert done.delivered_users == ["mei"]  # an electronics purchase is no baby purchase
    _, body = await api.call("GET", "/v1/users/mei/decisions", role=Role.MANAGER, expect=200)
    served = [_of_api(d) for d in body["decisions"]]

    path = tmp_path / "same.yaml"
    path.write_text(json.dumps({
        "name": "the service's purchases", "start": _utc(NOON_UTC - 60),
        "end": _utc(ten_beijing + HOUR), "venues": str(MALL), "profiles": profiles,
        "events": events, "campaigns": [campaign]}), encoding="utf-8")
    simulated = [_of_sim(d) for d in simulate(load_scenario(path)).decisions]
    assert simulated == served
    assert simulated[0][5] == ("mother-baby-daily", "早安", "给宝宝换上柔软的新衣。")
