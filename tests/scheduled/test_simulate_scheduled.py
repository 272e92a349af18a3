"""Scheduled campaigns in ``geopush simulate``: slots on the virtual clock in each user's
zone, decisions with event ``scheduled`` and venue ``null`` in ``--json``, scenarios
without pings, and the quiet-hours hold."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from server.cli import main

ROOT = Path(__file__).resolve().parents[2]
CASE_STUDY = ROOT / "fixtures" / "scenarios" / "case_study_mother_baby.yaml"
MALL = ROOT / "fixtures" / "scenarios" / "beijing_wudaokou_mall.geojson"


def _simulate(capsys: pytest.CaptureFixture[str], scenario: Path) -> dict[str, Any]:
    status = main(["simulate", str(scenario), "--json"])
    out, err = capsys.readouterr()
    assert status == 0, err
    result: dict[str, Any] = json.loads(out)
    return result


def _scenario(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "scheduled.yaml"
    path.write_text(f"venues: {MALL}\n{body}", encoding="utf-8")
    return path


def test_case_study_pushes_mothers_at_ten_and_fifteen_local(
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = _simulate(capsys, CASE_STUDY)
    deliveries = result["deliveries"]
    assert isinstance(deliveries, list)
    mei = [(d["at"], d["title"]) for d in deliveries if d["user_id"] == "mei"]
    assert mei == [("2026-11-28T10:00:00+08:00", "早安，梅"),
                   ("2026-11-28T15:00:00+08:00", "下午好，梅"),
                   ("2026-11-29T10:00:00+08:00", "早安，梅"),
                   ("2026-11-29T15:00:00+08:00", "下午好，梅")]
    decisions = result["decisions"]
    assert isinstance(decisions, list)
    assert {(d["event"], d["venue_id"]) for d in decisions} == {("scheduled", None)}
    assert not any(d["user_id"] == "jun" for d in decisions)  # not in the audience
    pictures = {d["chosen"]["rich"]["image_url"] for d in decisions if d["chosen"]}
    assert pictures == {"https://images.example.com/mother-baby/warm-moment.jpg"}


def test_helsinki_mother_gets_her_own_ten_oclock(capsys: pytest.CaptureFixture[str]) -> None:
    result = _simulate(capsys, CASE_STUDY)
    deliveries = result["deliveries"]
    assert isinstance(deliveries, list)
    anna = [d["at"] for d in deliveries if d["user_id"] == "anna"]
    # 10:00 and 15:00 in Helsinki (UTC+2) are 16:00 and 21:00 in Beijing.
    assert anna[:2] == ["2026-11-28T16:00:00+08:00", "2026-11-28T21:00:00+08:00"]


def test_a_slot_in_quiet_hours_is_held_on_the_virtual_clock(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = _scenario(tmp_path, """
name: early bird
start: 2026-11-28T00:00:00+08:00
end: 2026-11-29T00:00:00+08:00
timezone: Asia/Shanghai
policy: {quiet_hours: "22:00-08:00"}
profiles:
  - {user_id: mei, attributes: {timezone: Asia/Shanghai}, tags: [mother_baby]}
campaigns:
  - id: dawn
    trigger: {scheduled: {times: ["07:00"]}}
    audience: {any_of_tags: [mother_baby]}
    offer_ttl_s: 7200
    variants: [{id: a, title: "早安", body: "新的一天"}]
expect:
  - {user_id: mei, campaign_id: dawn, at: "2026-11-28T08:00:00+08:00", within_s: 1}
""")
    result = _simulate(capsys, scenario)
    [decision] = result["decisions"]
    assert decision["at"] == "2026-11-28T07:00:00+08:00"
    assert decision["decided_at"] == "2026-11-28T08:00:00+08:00"
    [delivery] = result["deliveries"]
    assert delivery["expires_at"] == "2026-11-28T09:00:00+08:00"  # 07:00 + the 2 h TTL


def test_slot_missing_its_ttl_in_quiet_hours_is_dropped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = _scenario(tmp_path, """
name: too early
start: 2026-11-28T00:00:00+08:00
end: 2026-11-29T00:00:00+08:00
timezone: Asia/Shanghai
profiles:
  - {user_id: mei, attributes: {timezone: Asia/Shanghai}, tags: [mother_baby]}
campaigns:
  - id: night
    trigger: {scheduled: {times: ["03:00"]}}
    variants: [{id: a, title: "晚安", body: "..."}]
expect:
  - {user_id: mei, none: true}
  - {user_id: mei, campaign_id: night, reason: quiet_hours}
""")
    result = _simulate(capsys, scenario)
    assert all(e["met"] for e in result["expectations"])


def test_a_scenario_without_profiles_or_pings_is_still_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = _scenario(tmp_path, """
name: nobody
start: 2026-11-28T00:00:00+08:00
campaigns:
  - id: night
    trigger: {scheduled: {times: ["10:00"]}}
    variants: [{id: a, title: "t", body: "b"}]
""")
    status = main(["simulate", str(scenario)])
    _, err = capsys.readouterr()
    assert status != 0
    assert "no pings, trajectories or users" in err


def test_a_scheduled_candidate_is_back_tested_without_sending(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    candidate = tmp_path / "noon.yaml"
    candidate.write_text("""
id: mother-baby-noon
trigger: {scheduled: {times: ["12:00"]}}
audience: {any_of_tags: [mother_baby]}
variants: [{id: a, title: "午安", body: "午餐时间到了。"}]
""", encoding="utf-8")
    status = main(["simulate", str(CASE_STUDY), "--backtest", str(candidate)])
    out, err = capsys.readouterr()
    assert status == 0, err
    # Mei, Lin, Fang and Anna at noon on both days; Xiu refused every channel.
    assert "would send 8 pushes to 4 users" in out
    assert "16 without → 24 with the candidate" in out
