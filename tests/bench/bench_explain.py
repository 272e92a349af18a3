"""What explaining interest scores costs when a model is loaded, and how the tree-path
attribution compares with LightGBM's TreeSHAP (``pred_contrib``).

A ranker fitted on the generated behaviour of ``tests/learning/synthetic.py``
(``--users`` users, 42 days; seeded), then, in the same run:

- the scorer built as the service builds it (:meth:`InterestScorer.build`, top 20 per
  user, explanations included), the explanations alone again (the same pairs), and
  their bytes a user;
- per (user, top category) pair, CPU µs of a raw prediction, of the path attribution
  (:class:`~triggers.learning.explain.PathAttribution`) and of ``pred_contrib`` (on
  ``--shap-pairs`` pairs: it is slow);
- agreement: the share of pairs whose largest path contribution is among TreeSHAP's three
  largest, and whose largest is TreeSHAP's largest.

Run standalone (``.venv/bin/python tests/bench/bench_explain.py [--users N]``).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.bench._common import force_single_thread_env

force_single_thread_env()

import lightgbm as lgb  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from tests.bench._common import format_table  # noqa: E402
from tests.learning.synthetic import START_T, World, events  # noqa: E402
from triggers.learning import interests  # noqa: E402
from triggers.learning.coding import Vocabulary, kind_codes  # noqa: E402
from triggers.learning.explain import PathAttribution, explain_pairs  # noqa: E402
from triggers.learning.features import pair_features  # noqa: E402
from triggers.learning.pairs import pair_keys  # noqa: E402
from triggers.learning.scoring import InterestScorer  # noqa: E402

UNTIL = START_T + 35 * 86_400


def fitted(users: int) -> tuple[interests.InterestModel, list[str]]:
    frame = pd.concat(list(events(World(users=users, days=42, seed=11))), ignore_index=True)
    ids, cats = Vocabulary(), Vocabulary()
    user = ids.index(frame.user_id.tolist())
    category = cats.index(frame.category.tolist())
    ts = frame.ts.to_numpy(dtype=float)
    params = interests.InterestParams()
    acc = interests.accumulator(float(ts.min()), UNTIL, len(ids), params)
    acc.add(user, category, kind_codes(frame.kind.tolist()), ts)
    return interests.fit(acc, cats.ids, params), ids.ids


def cpu(work: Callable[[], object]) -> float:
    start = time.process_time()
    work()
    return time.process_time() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=3_000)
    parser.add_argument("--shap-pairs", type=int, default=3_000)
    args = parser.parse_args(argv)
    model, ids = fitted(args.users)
    if model.booster is None:
        print("the ranker was not promoted on this data: nothing to explain")
        return 1
    built: list[InterestScorer] = []
    build_s = cpu(lambda: built.append(InterestScorer.build(model, ids, UNTIL)))
    explained = built[0]
    assert explained.explanations is not None
    pairs = len(explained.scores_flat)
    extra = sum(a.nbytes for a in (explained.explanations.features,
                                   explained.explanations.contributions,
                                   explained.explanations.values))
    booster = lgb.Booster(model_str=model.booster)
    ctx = model.context()
    rows = np.repeat(np.arange(len(ids)), np.diff(explained.offsets))
    explain_s = cpu(lambda: explain_pairs(model.booster or "", ctx, rows,
                                          explained.category_index.astype(np.int64), UNTIL))
    seconds = {"scorer build (ranking + explanations)": build_s,
               "of which the explanations": explain_s}
    warm = np.isin(rows, ctx.user_ids)
    keys = pair_keys(rows[warm], explained.category_index[warm].astype(np.int64))
    x = pair_features(ctx, keys, UNTIL)
    attribution = PathAttribution.of(booster)
    sample = x[: args.shap_pairs]
    per_pair = {
        "raw prediction": cpu(lambda: booster.predict(x, raw_score=True)) / len(x),
        "path attribution": cpu(lambda: attribution.contributions(booster, x)) / len(x),
    }
    shap: list[np.ndarray] = []
    per_pair["TreeSHAP (pred_contrib)"] = cpu(
        lambda: shap.append(np.asarray(booster.predict(sample, pred_contrib=True)))) / len(sample)
    path = np.abs(attribution.contributions(booster, sample))
    shap_abs = np.abs(shap[0][:, :-1])
    top_path = np.argmax(path, axis=1)
    top3 = np.argsort(-shap_abs, axis=1)[:, :3]
    among = float((top3 == top_path[:, None]).any(axis=1).mean())
    same = float((top3[:, 0] == top_path).mean())

    print(f"interest explanations: {len(ids):,} users, {len(model.categories)} categories, "
          f"{pairs:,} held scores (top 20 a user); one core")
    print(format_table(["scorer build", "cpu s"],
                       [[name, f"{s:.2f}"] for name, s in seconds.items()]))
    print(f"explanations: {extra / pairs:.0f} bytes a score, {extra / len(ids):.0f} bytes "
          f"a user ({explain_s / build_s:.0%} of the build)")
    print(format_table(["per pair", "cpu µs", "× raw prediction"],
                       [[name, f"{s * 1e6:.1f}", f"{s / per_pair['raw prediction']:.1f}"]
                        for name, s in per_pair.items()]))
    print(f"largest path contribution among TreeSHAP's top 3: {among:.1%}; TreeSHAP's "
          f"largest: {same:.1%} ({len(sample):,} pairs)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
