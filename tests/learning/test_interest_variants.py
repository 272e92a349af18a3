"""The variants harness judges the shipped fit exactly as the evaluation harness does, so a
"tried and not kept" figure beside a shipped one compares like with like."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bench import eval_learning, interest_variants
from tests.learning.missions import MissionWorld, events, write_taobao
from triggers.learning.interests import InterestParams


def _cells(table: str, starts: str) -> list[str]:
    row = next(line for line in table.splitlines() if line.startswith(starts))
    return row[len(starts):].split()


def test_the_shipped_variant_scores_what_the_evaluation_harness_scores(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    world = events(MissionWorld(users=1_200, categories=150, seed=5))
    raw = tmp_path / "UserBehavior.csv"
    write_taobao(world, raw)
    log = f"taobao:{raw}"
    assert eval_learning.main(["--log", log, "--dir", str(tmp_path / "eval")]) == 0
    evaluated = _cells(capsys.readouterr().out, "taobao until ")
    assert interest_variants.main(["--log", log, "--dir", str(tmp_path / "variants"),
                                   "--variant", "shipped",
                                   "--variant", "few_rounds:rounds=10,num_leaves=7"]) == 0
    varied = _cells(capsys.readouterr().out, "taobao until ")
    # cutoff, users, recall@5 of the model, recency-frequency and popularity, the ratio
    cutoff, _events, users, model, rf, pop, ratio = evaluated[:7]
    assert varied[:6] == [cutoff, users, rf, pop, model, ratio]
    recall, ratio, cpu_s = varied[7:10]
    assert 0.0 < float(recall) <= 1.0
    assert float(ratio.rstrip("x")) == pytest.approx(float(recall) / max(
        float(varied[2]), float(varied[3])), abs=1e-3)
    assert float(cpu_s) > 0.0


@pytest.mark.parametrize(("given", "named"), [
    ("leaves:num_leafs=63", "'num_leafs=63' is not FIELD=VALUE"),
    ("leaves:num_leaves", "'num_leaves' is not FIELD=VALUE"),
    ("leaves:num_leaves=many", "num_leaves takes a number, not 'many'"),
    (":rounds=10", "a name first"),
])
def test_a_variant_that_is_not_a_change_of_parameters_is_named(given: str, named: str) -> None:
    with pytest.raises(SystemExit, match=named):
        interest_variants.Variant.parse(given)


def test_a_variant_changes_only_the_fields_it_names() -> None:
    variant = interest_variants.Variant.parse("wider:num_leaves=63,learning_rate=0.1")
    params = variant.params(period_d=2.0)
    assert (params.num_leaves, params.learning_rate, params.period_d) == (63, 0.1, 2.0)
    assert params.rounds == InterestParams().rounds
