"""Every fixture scenario meets its own expectations, through the real CLI entry point;
the output is deterministic; maps and plots carry what they should."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from matplotlib import image

from server.cli import main

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "fixtures" / "scenarios"
FLAGSHIP = SCENARIOS / "helsinki_saturday_mall.yaml"
CANDIDATE = SCENARIOS / "candidates" / "forum_lunch_flash.yaml"
FORUM = "osm:way/289767497"


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


@pytest.mark.parametrize("scenario", sorted(SCENARIOS.glob("*.yaml")), ids=lambda p: p.stem)
def test_fixture_scenario_meets_its_expectations(
    scenario: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = _run(capsys, "simulate", str(scenario), "--json")
    result = json.loads(out)
    unmet = [e for e in result["expectations"] if not e["met"]]
    assert status == 0, err
    assert result["expectations"] and not unmet


def test_there_are_at_least_eight_fixture_scenarios() -> None:
    assert len(list(SCENARIOS.glob("*.yaml"))) >= 8


def test_same_scenario_gives_byte_identical_json(capsys: pytest.CaptureFixture[str]) -> None:
    _, first, _ = _run(capsys, "simulate", str(FLAGSHIP), "--json")
    _, second, _ = _run(capsys, "simulate", str(FLAGSHIP), "--json")
    assert first == second


def test_json_has_the_contract_shape(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = _run(capsys, "simulate", str(FLAGSHIP), "--json")
    result = json.loads(out)
    assert {"events", "decisions", "deliveries", "summary"} <= set(result)
    decision = next(d for d in result["decisions"] if d["chosen"] is not None)
    assert {"user_id", "venue_id", "event", "at", "chosen", "considered"} <= set(decision)
    assert set(decision["chosen"]) == {"campaign_id", "variant_id", "title", "body", "channel"}
    assert {"campaign_id", "outcome", "reason"} <= set(decision["considered"][0])
    keys = [d["id"] for d in result["deliveries"]]
    assert len(keys) == len(set(keys)) == result["summary"]["pushes"] == 5


def test_timeline_names_venues_pushes_and_suppressions(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, out, _ = _run(capsys, "simulate", str(FLAGSHIP))
    assert status == 0
    assert "Saturday 2026-11-28" in out
    assert "aino" in out and "Forum" in out and "Moomin Shop" in out
    assert "PUSH forum-baby-care/" in out
    assert "Expectations: 7/7 met" in out
    status, out, _ = _run(capsys, "simulate", str(SCENARIOS / "quiet_hours_night.yaml"))
    assert status == 0
    assert "no push — station-coffee: quiet_hours" in out


def test_map_carries_venue_trajectory_event_and_push_layers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "flagship.html"
    status, _, _ = _run(capsys, "simulate", str(FLAGSHIP), "--map", str(target))
    html = target.read_text(encoding="utf-8")
    assert status == 0
    for layer in ("venues", "trajectories", "events", "pushes"):
        assert f'"{layer}"' in html or f"'{layer}'" in html or f"{layer}</" in html
    assert FORUM in html
    assert "Gift ideas at Moomin Shop" in html
    assert "OpenStreetMap contributors" in html


def test_plot_is_a_real_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "flagship.png"
    status, _, _ = _run(capsys, "simulate", str(FLAGSHIP), "--plot", str(target))
    data = target.read_bytes()
    pixels = image.imread(str(target))
    assert status == 0
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 10_000
    assert pixels.shape[0] > 150 and pixels.shape[1] > 600
    assert pixels.reshape(-1, pixels.shape[-1]).std(axis=0).max() > 0.05


def test_backtest_reports_reach_and_displaced_pushes(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = _run(capsys, "simulate", str(FLAGSHIP), "--json",
                          "--backtest", str(CANDIDATE))
    report = json.loads(out)["backtest"]
    assert status == 0
    assert report["candidate"] == "mall-flash-sale"
    assert report["pushes"] == 2 and report["users_reached"] == 2
    assert report["displaced"]["by_priority"] == {"mall-welcome": 2}
    # Nothing was sent: the scenario's own deliveries are unchanged.
    assert json.loads(out)["summary"]["pushes_by_campaign"].get("mall-flash-sale") is None


def test_backtest_text_says_nothing_is_sent(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = _run(capsys, "simulate", str(FLAGSHIP), "--backtest", str(CANDIDATE))
    assert "Back-test of mall-flash-sale — nothing sent" in out
    assert "by priority over mall-welcome: 2" in out
