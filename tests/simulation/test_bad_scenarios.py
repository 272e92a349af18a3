"""Bad scenarios: one readable line naming the file, the line, the YAML path and what was
expected; exit status 2; never a traceback. An unmet expectation: exit 1 with a diff."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.cli import main

ROOT = Path(__file__).resolve().parents[2]
HELSINKI = ROOT / "fixtures" / "venues" / "helsinki_venues.geojson"

GOOD = f"""\
name: tiny
start: 2026-11-28T09:55:00+02:00
venues: {HELSINKI}
campaigns:
  - id: welcome
    trigger: {{event: enter}}
    variants: [{{id: a, title: Hi, body: There}}]
trajectories:
  - user_id: u1
    generate: {{route: [entrance, "venue:osm:way/289767497", "wait:120"]}}
"""


def _fail(tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    path = tmp_path / "scenario.yaml"
    path.write_text(text, encoding="utf-8")
    status = main(["simulate", str(path)])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return status, err


def test_the_tiny_scenario_itself_is_fine(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    status, _ = _fail(tmp_path, GOOD, capsys)
    assert status == 0


def test_missing_scenario_file_names_it(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["simulate", str(tmp_path / "nope.yaml")])
    err = capsys.readouterr().err
    assert status == 2
    assert "nope.yaml: no such file" in err


def test_missing_venue_file_names_the_key(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    status, err = _fail(tmp_path, GOOD.replace(str(HELSINKI), "missing.geojson"), capsys)
    assert status == 2
    assert "scenario.yaml:3: venues: venue file 'missing.geojson' not found" in err


def test_wrong_trigger_event_names_path_line_and_expected_values(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, err = _fail(tmp_path, GOOD.replace("event: enter", "event: arrive"), capsys)
    assert status == 2
    assert "scenario.yaml:6: campaigns[0].trigger.event:" in err
    assert "'enter', 'dwell' or 'exit'" in err and "'arrive'" in err


def test_wrong_type_at_trigger_event(tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    status, err = _fail(tmp_path, GOOD.replace("event: enter", "event: [1, 2]"), capsys)
    assert status == 2
    assert "campaigns[0].trigger.event" in err


def test_unknown_venue_in_a_route(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, err = _fail(tmp_path, GOOD.replace("venue:osm:way/289767497", "venue:nowhere"),
                        capsys)
    assert status == 2
    assert "scenario.yaml:10: trajectories[0].generate.route[1]:" in err
    assert "no venue 'nowhere'" in err


def test_bad_route_item_says_the_grammar(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    status, err = _fail(tmp_path, GOOD.replace('"wait:120"', '"sleep:120"'), capsys)
    assert status == 2
    assert "trajectories[0].generate.route[2]" in err and "wait:<seconds>" in err


def test_bad_yaml_syntax_names_the_line(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    status, err = _fail(tmp_path, GOOD.replace("trigger: {event: enter}",
                                               "trigger: {event: enter"), capsys)
    assert status == 2
    assert "scenario.yaml:7: not valid YAML" in err


def test_unknown_key_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, err = _fail(tmp_path, GOOD + "expectations: []\n", capsys)
    assert status == 2
    assert "scenario.yaml:11: expectations: unknown key" in err


def test_expectation_about_unknown_campaign(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    text = GOOD + "expect:\n  - {user_id: u1, campaign_id: ghost}\n"
    status, err = _fail(tmp_path, text, capsys)
    assert status == 2
    assert "expect[0].campaign_id: no campaign 'ghost'" in err


def test_unmet_expectation_exits_1_with_expected_and_got(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = GOOD + ("expect:\n  - {user_id: u1, campaign_id: welcome, "
                   "at: '2026-11-28T12:00:00+02:00', within_s: 60}\n")
    status, err = _fail(tmp_path, text, capsys)
    assert status == 1
    assert "expectation expect[0] not met" in err
    assert "- expected: u1 gets a push of welcome, at 2026-11-28T12:00:00+02:00 ± 60 s" in err
    assert "+ got:      pushes to u1: 2026-11-28T09:5" in err


def test_bad_backtest_campaign_names_its_file_and_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(GOOD, encoding="utf-8")
    candidate = tmp_path / "candidate.yaml"
    candidate.write_text("id: x\ntrigger: {event: enter}\nvariants: []\n", encoding="utf-8")
    status = main(["simulate", str(scenario), "--backtest", str(candidate)])
    err = capsys.readouterr().err
    assert status == 2
    assert "candidate.yaml:3: variants:" in err and "Traceback" not in err


@pytest.mark.parametrize(("old", "new", "where"), [
    ("trigger: {event: enter}", "trigger: {event: dwell, dwell_s: .inf}",
     "scenario.yaml:6: campaigns[0].trigger.dwell_s: not a finite number"),
    ("variants: [{id: a, title: Hi, body: There}]",
     "variants: [{id: a, title: Hi, body: There, weight: .nan}]",
     "scenario.yaml:7: campaigns[0].variants[0].weight: not a finite number"),
    ("name: tiny", "name: tiny\npolicy: {min_gap_s: -.Inf}",
     "scenario.yaml:2: policy.min_gap_s: not a finite number"),
])
def test_a_non_finite_number_names_its_line_and_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], old: str, new: str, where: str,
) -> None:
    """YAML reads ``.inf`` and ``.nan`` as floats: refused where the file is read."""
    status, err = _fail(tmp_path, GOOD.replace(old, new), capsys)
    assert status == 2
    assert where in err


@pytest.mark.parametrize(("old", "new", "where"), [
    ("trigger: {event: enter}",
     "trigger: {event: enter}\n    schedule: {start: 2026-12-24T00:00:00+02:00, "
     "end: 2026-11-29T00:00:00+02:00}",
     "scenario.yaml:7: campaigns[0].schedule.end: end (2026-11-28T22:00:00+00:00) is not "
     "after start (2026-12-23T22:00:00+00:00)"),
    ("trigger: {event: enter}",
     "trigger: {event: enter}\n    audience: {age: {min: 40, max: 30}}",
     "scenario.yaml:7: campaigns[0].audience.age.max: max (30) is below min (40)"),
    ("name: tiny", "name: tiny\npolicy: {presence: {max_accuracy_m: 20}}",
     "scenario.yaml:2: policy.presence: default_accuracy_m (30) is above max_accuracy_m (20)"),
    ("name: tiny", "name: tiny\npolicy: {country: XX}",
     "scenario.yaml:2: policy.country: 'XX' is not an ISO 3166-1 alpha-2 country code"),
], ids=["schedule", "age", "accuracy", "country"])
def test_values_that_contradict_each_other_name_the_line_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], old: str, new: str, where: str,
) -> None:
    status, err = _fail(tmp_path, GOOD.replace(old, new), capsys)
    assert status == 2
    assert where in err
