"""Retry timing of the outbox: exponential backoff with jitter, honouring Retry-After.

Pure: the random source is a parameter, so a test (or a replay) seeds it and gets the
same delays every time.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    """``delay = min(max_s, base_s * factor ** (attempt - 1))``, then jittered down by up
    to ``jitter`` of itself ("equal jitter": never less than ``1 - jitter`` of the
    exponential step, so retries spread out without collapsing to zero).

    A peer's Retry-After is a floor: we never come back earlier than asked (it may be
    later, by the jitter). ``max_attempts`` sends in all, then the delivery is
    dead-lettered.
    """

    base_s: float = 2.0
    """The first retry waits about this long: long enough for a restarting peer."""
    factor: float = 2.0
    max_s: float = 600.0
    """Ten minutes: a location offer lives about an hour, so a longer wait is pointless."""
    jitter: float = 0.5
    max_attempts: int = 8
    """2 + 4 + ... + 256 s ≈ 8.5 minutes of retries before the dead letter."""

    def __post_init__(self) -> None:
        if self.base_s <= 0 or self.factor < 1 or self.max_s < self.base_s:
            raise ValueError("backoff needs base_s > 0, factor >= 1 and max_s >= base_s")
        if not 0 <= self.jitter <= 1 or self.max_attempts < 1:
            raise ValueError("backoff needs 0 <= jitter <= 1 and max_attempts >= 1")

    def delay_s(self, attempt: int, rng: random.Random, *,
                retry_after_s: float | None = None) -> float:
        """Seconds to wait after failed send number ``attempt`` (1 = the first send)."""
        step = min(self.max_s, self.base_s * self.factor ** max(0, attempt - 1))
        delay = step * (1.0 - self.jitter * rng.random())
        if retry_after_s is not None:
            delay = max(delay, retry_after_s)
        return delay

    def exhausted(self, attempts: int) -> bool:
        """Whether ``attempts`` sends used up the budget."""
        return attempts >= self.max_attempts
