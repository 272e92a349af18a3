"""Campaign statistics: proportions with Wilson intervals, lift with a z-test. Pure.

- **CTR** (and open rate) of a variant: deliveries with a click over deliveries sent,
  with the Wilson score interval — unlike the normal ("Wald") interval it stays inside
  [0, 1] and keeps its coverage for the small counts and the rates near 0 that push
  campaigns have.
- **Lift** against the control group, intention-to-treat: the conversion rate of the
  users a campaign *decided to push* (every user with a delivery of it, whether the push
  arrived or not) against that of the users it held out at the same decision point
  (``held_out_control``). Counting only users the push reached would compare reachable
  users with everyone, a selection bias; the held-out users are the same population by
  construction (hash assignment). ``lift = p_treated / p_control - 1``; its p-value is
  the two-sided two-proportion z-test with the pooled variance.

A user converts when the tenant reports it — ``converted`` feedback on a delivery, or a
conversion posted for (campaign, user), which is the only way a held-out user can.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

Z_95 = 1.959963984540054
"""The two-sided 95% quantile of the standard normal distribution."""


@dataclass(frozen=True, slots=True)
class Proportion:
    """``successes`` of ``trials``, its rate and a confidence interval (None: no trials)."""

    successes: int
    trials: int
    rate: float | None
    low: float | None
    high: float | None


def wilson(successes: int, trials: int, *, z: float = Z_95) -> Proportion:
    """The Wilson score interval for ``successes`` out of ``trials`` (95% by default)."""
    if trials < 0 or not 0 <= successes <= trials:
        raise ValueError("need 0 <= successes <= trials")
    if trials == 0:
        return Proportion(successes, trials, None, None, None)
    p = successes / trials
    z2 = z * z
    centre = (p + z2 / (2 * trials)) / (1 + z2 / trials)
    half = z / (1 + z2 / trials) * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials))
    # Clamp the rounding at the ends: 0 successes has a lower bound of exactly 0.
    return Proportion(successes, trials, p, max(0.0, centre - half), min(1.0, centre + half))


@dataclass(frozen=True, slots=True)
class Lift:
    """Treated against control: rates, relative lift, z statistic and p-value (None
    where undefined: an empty group, a zero control rate, or no variance at all)."""

    treated: Proportion
    control: Proportion
    lift: float | None
    z: float | None
    p_value: float | None


def two_proportion_z(x1: int, n1: int, x2: int, n2: int) -> tuple[float, float] | None:
    """``(z, two-sided p)`` of the pooled two-proportion z-test of x1/n1 against x2/n2;
    None when a group is empty or the pooled rate is 0 or 1 (no variance)."""
    if n1 <= 0 or n2 <= 0:
        return None
    pooled = (x1 + x2) / (n1 + n2)
    variance = pooled * (1 - pooled) * (1 / n1 + 1 / n2)
    if variance <= 0:
        return None
    z = (x1 / n1 - x2 / n2) / math.sqrt(variance)
    # P(|Z| >= |z|) = erfc(|z| / sqrt 2): no statistics library needed for one CDF.
    return z, math.erfc(abs(z) / math.sqrt(2))


def lift(treated_converted: int, treated: int, control_converted: int,
         control: int) -> Lift:
    """Lift of the treated group's conversion rate over the control group's."""
    t, c = wilson(treated_converted, treated), wilson(control_converted, control)
    relative = None
    if t.rate is not None and c.rate:
        relative = t.rate / c.rate - 1
    test = two_proportion_z(treated_converted, treated, control_converted, control)
    return Lift(t, c, relative, None if test is None else test[0],
                None if test is None else test[1])
