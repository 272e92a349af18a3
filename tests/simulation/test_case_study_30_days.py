"""The 30-day case study (fixtures/scenarios/case_study_30_days.yaml): 300 users in
Beijing, a third of them mothers known only from their purchases. The learned policy
(mother_baby from behaviour, warm content at 10:00 and 15:00 local) beats the same offer
blasted to everyone at 12:00, and the lift's 95 % interval excludes zero."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import pytest

from server.cli import main

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
    # 300 users, ~3 % refused every channel: the blast sends ~290 a day for 30 days.
    assert blast["pushes"] > 8000
    assert 2000 <= learned["pushes"] < blast["pushes"]


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
