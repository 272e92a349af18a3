"""The 30-day case study (fixtures/scenarios/case_study_30_days.yaml): 300 users in
Beijing, a third of them mothers known only from their purchases. The learned policy
(mother_baby from behaviour, the mother_baby offer, once a day at each mother's best time
learned from her app opens and push opens) beats the same offer blasted to everyone at
12:00, and the lift's 95 % interval excludes zero; its best time also beats its own
fallback hour for the same mothers."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from server.cli import main
from server.cli.scenario_files import load_scenario
from triggers.simulation import simulate
from triggers.simulation.response import Compare

SCENARIO = Path(__file__).resolve().parents[2] / "fixtures" / "scenarios" / \
    "case_study_30_days.yaml"


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    """The scenario's --json, run once for the module."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = main(["simulate", str(SCENARIO), "--json"])
    assert status == 0
    doc: dict[str, Any] = json.loads(out.getvalue())
    return doc


def _response(report: dict[str, Any]) -> dict[str, Any]:
    response: dict[str, Any] = report["summary"]["response"]
    return response


def test_learned_policy_has_a_higher_ctr_than_the_blast(report: dict[str, Any]) -> None:
    lift = _response(report)["lift"]
    assert (lift["policy"], lift["over"]) == ("learned", "blast")
    assert lift["ctr"] > lift["other_ctr"]


def test_lift_interval_excludes_zero(report: dict[str, Any]) -> None:
    lift = _response(report)["lift"]
    assert 0 < lift["low"] < lift["lift"] < lift["high"]


def test_the_blast_reaches_everyone_and_the_learned_policy_only_mothers(
        report: dict[str, Any]) -> None:
    policies = _response(report)["policies"]
    learned, blast = policies["learned"], policies["blast"]
    # 300 users, ~3 % refused every channel: the blast sends ~290 a day for 30 days;
    # the learned policy once a day to each of the ~80 mothers.
    assert blast["pushes"] > 8000
    assert 2000 <= learned["pushes"] < blast["pushes"]


def test_mothers_move_from_the_fallback_to_their_learned_hours_as_the_days_pass(
        report: dict[str, Any]) -> None:
    # Decision times are ISO 8601 in Beijing time: the first three days sort before this.
    notes = Counter((d["at"] < "2026-11-04", "fallback" if "fallback" in d["notes"][0]
                     else "model") for d in report["decisions"] if d["chosen"] is not None)
    first_days = notes[(True, "fallback")] / (notes[(True, "fallback")]
                                              + notes[(True, "model")])
    later = notes[(False, "model")] / (notes[(False, "fallback")] + notes[(False, "model")])
    assert first_days > 0.9
    assert later > 0.8


def test_best_time_beats_the_same_mothers_at_the_fallback_hour() -> None:
    scenario = load_scenario(SCENARIO)
    spec = scenario.spec
    learned = spec.campaigns[0]
    scheduled = learned.trigger.scheduled
    assert scheduled is not None and scheduled.best_time is not None
    at_fallback = learned.model_copy(update={"trigger": learned.trigger.model_copy(update={
        "scheduled": scheduled.model_copy(update={
            "best_time": None, "times": (scheduled.best_time.fallback,)})})})
    paired = spec.model_copy(update={"compare": Compare(name="fallback",
                                                        campaigns=(at_fallback,))})
    result = simulate(dataclasses.replace(scenario, spec=paired), keep_records=False)
    assert result.response is not None
    lift = result.response["lift"]
    assert (lift["policy"], lift["over"]) == ("learned", "fallback")
    assert 0 < lift["low"] < lift["lift"]


def test_scenario_meets_its_expectations(report: dict[str, Any]) -> None:
    expectations = report["expectations"]
    assert expectations
    assert all(e["met"] for e in expectations)


def test_readable_output_prints_both_ctrs_and_the_lift(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", str(SCENARIO)]) == 0
    out = capsys.readouterr().out
    assert "learned: " in out and "blast: " in out
    assert "CTR lift of learned over blast: +" in out
