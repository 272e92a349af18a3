"""Frequency by feedback: each user's learned daily cap. Pure.

The model: the chance that the user opens a push, from the pushes they received in the
last :data:`WINDOW_S` (seven days) and how many of them they opened, as the mean of a
Beta-binomial posterior with a uniform prior,

    p_open = (opens + 1) / (pushes + 2)

so a user with no recent pushes has ``p_open = 0.5``. The rule that turns it into a daily
cap, bounded by the tenant's ``max_per_day`` (``tenant_cap``):

    cap = 1 + floor((tenant_cap - 1) * min(1, p_open / FULL_CAP_RATE))

A user who opens at least half of their pushes (and a user with no history) keeps the
tenant's cap; one who opens none of eight gets one push a day. Never below one: only a
push can be opened, and an open is how the user earns the cap back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from triggers.learning.signals import Counts

WINDOW_S = 7 * 86_400.0
"""How far back the pushes and opens of the estimate reach: a week (habits by weekday)."""
FULL_CAP_RATE = 0.5
"""The open rate at and above which a user tolerates the tenant's whole daily cap."""


@dataclass(frozen=True, slots=True)
class Tolerance:
    """A user's learned cap and the numbers it came from."""

    cap: int
    p_open: float
    opens: int
    pushes: int
    tenant_cap: int

    def describe(self) -> str:
        """``opened 0/8 pushes in 7 days (p_open 0.10): learned cap 1 of 3``."""
        return (f"opened {self.opens}/{self.pushes} pushes in 7 days (p_open "
                f"{self.p_open:.2f}): learned cap {self.cap} of {self.tenant_cap}")


def open_probability(recent: Counts) -> float:
    """The posterior mean chance of opening, from recent pushes and opens."""
    return (recent.successes + 1.0) / (recent.trials + 2.0)


def learned_cap(recent: Counts, tenant_cap: int) -> Tolerance:
    """The user's daily cap under the rule in the module docstring (``tenant_cap`` >= 0;
    a tenant cap of 0 stays 0: the tenant sends nothing)."""
    p_open = open_probability(recent)
    if tenant_cap <= 1:
        cap = tenant_cap
    else:
        share = min(1.0, p_open / FULL_CAP_RATE)
        cap = 1 + math.floor((tenant_cap - 1) * share + 1e-9)
    return Tolerance(cap, p_open, recent.successes, recent.trials, tenant_cap)
