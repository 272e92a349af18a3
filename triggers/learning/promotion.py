"""The promotion rule of learned models, pure: a fitted model is used only when its
held-out figure is at least that of every baseline it is judged against. The service's
training (``server.models.train_tenant``) and the simulator's send-time learning
(``triggers.simulation.sendtime``) both decide with :func:`verdict`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

BASELINES: dict[str, tuple[str, ...]] = {
    "interests": ("recency_frequency", "popularity"),
    "sendtime": ("global_peak",),
}
"""The evaluation keys of the baselines a model must match to be promoted."""


def verdict(kind: str, evaluation: Mapping[str, Any]) -> tuple[bool, str]:
    """Whether a model of ``kind`` with this evaluation is promoted, and why (in words)."""
    score = evaluation.get("model")
    if score is None:
        return False, "too little history to judge it on held-out time"
    baselines = {b: float(evaluation[b]) for b in BASELINES[kind] if b in evaluation}
    if not baselines:
        return False, "no baseline to judge it against"
    best = max(baselines, key=lambda b: baselines[b])
    if float(score) < baselines[best]:
        return False, f"worse than the {best.replace('_', '-')} baseline " \
                      f"({float(score):.4f} < {baselines[best]:.4f})"
    return True, f"at least the {best.replace('_', '-')} baseline " \
                 f"({float(score):.4f} >= {baselines[best]:.4f})"
