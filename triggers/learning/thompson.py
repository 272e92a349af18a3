"""Variants that learn: Thompson sampling over a campaign's arms on clicks. Pure.

Each arm's click rate has a Beta posterior, ``Beta(1 + clicks, 1 + sends - clicks)``
(a uniform prior: an arm nobody has seen is as likely as not to be the best). For every
decision one rate is drawn from each arm's posterior and the highest draw wins, so an arm
is chosen as often as it is probably the best: a clearly worse arm is soon sent rarely,
and arms that are still close keep sharing the traffic.

The draws are seeded from BLAKE2b of (campaign, user, event time), never from a global
random state, so a replay of the same events with the same counts picks the same arms.
Arms with weight 0 stay switched off; the declared weights otherwise play no part. The
control group is not drawn here: it stays the fixed hash hold-out of
:func:`triggers.decisions.experiments.in_control`, so the users held out are the same
whatever the arms' counts, and the lift against them stays honest.
"""

from __future__ import annotations

import hashlib
import math
import struct
from collections.abc import Mapping, Sequence

from triggers.learning.signals import NO_COUNTS, Counts


def seed_of(campaign_id: str, user_id: str, at: float) -> bytes:
    """The draws' key: the campaign, the user and the event time (hashed by :class:`Draws`)."""
    return "\x1f".join(("thompson", campaign_id, user_id, repr(float(at)))).encode("utf-8")


def posterior(counts: Counts) -> tuple[float, float]:
    """The Beta posterior ``(alpha, beta)`` of an arm's click rate."""
    return 1.0 + counts.successes, 1.0 + counts.trials - counts.successes


def thompson_arm(
    campaign_id: str,
    user_id: str,
    at: float,
    arms: Sequence[tuple[str, float]],
    counts: Mapping[str, Counts],
) -> str:
    """The arm (variant id) Thompson sampling picks for this user and event.

    ``arms`` as declared (``(variant id, weight)``); ``counts`` per variant id (an arm
    missing from it has no sends yet). Ties go to the first declared arm. Raises
    ``ValueError`` when no arm has a positive weight.
    """
    live = [arm_id for arm_id, weight in arms if weight > 0]
    if not live:
        raise ValueError("no arm has a positive weight")
    if len(live) == 1:
        return live[0]
    draws = Draws(seed_of(campaign_id, user_id, at))
    best, best_draw = live[0], -1.0
    for arm_id in live:
        alpha, beta = posterior(counts.get(arm_id, NO_COUNTS))
        draw = draws.beta(alpha, beta)
        if draw > best_draw:
            best, best_draw = arm_id, draw
    return best


_TO_UNIT = 1.0 / (1 << 53)
NORMAL_FROM = 30.0
"""Beta parameters (1 + clicks, 1 + misses) from which a draw uses the normal
approximation: by 30 of each, the Beta's skewness is under 0.1 of a standard deviation."""
_EIGHT_WORDS = struct.Struct(">8Q")


class Draws:
    """Seeded random draws for one decision: uniforms from BLAKE2b of the key and a block
    counter (eight 64-bit words a block), Box-Muller normals and Marsaglia-Tsang gammas.

    Why not ``random.Random(seed)``: seeding it fills a 624-word state, ~18 µs, more than
    the rest of a Thompson decision; one BLAKE2b block (~1 µs) gives the eight uniforms a
    two-arm draw needs. The stream is the same on every platform and Python version.
    """

    __slots__ = ("_block", "_buffer", "_key", "_spare")

    def __init__(self, key: bytes) -> None:
        self._key = key
        self._block = 0
        self._buffer: list[float] = []
        self._spare: float | None = None

    def uniform(self) -> float:
        """A uniform number in (0, 1) (never 0: the gammas take its logarithm)."""
        buffer = self._buffer
        if not buffer:
            digest = hashlib.blake2b(self._key + self._block.to_bytes(4, "big"),
                                     digest_size=64).digest()
            self._block += 1
            buffer.extend([((q >> 11) + 0.5) * _TO_UNIT for q in _EIGHT_WORDS.unpack(digest)])
        return buffer.pop()

    def normal(self) -> float:
        """A standard normal number (Box-Muller; the second of each pair is kept)."""
        spare = self._spare
        if spare is not None:
            self._spare = None
            return spare
        radius = math.sqrt(-2.0 * math.log(self.uniform()))
        angle = 2.0 * math.pi * self.uniform()
        self._spare = radius * math.sin(angle)
        return radius * math.cos(angle)

    def gamma(self, shape: float) -> float:
        """A Gamma(shape, 1) number for ``shape >= 1`` (Marsaglia and Tsang, 2000)."""
        d = shape - 1.0 / 3.0
        c = 1.0 / math.sqrt(9.0 * d)
        while True:
            x = self.normal()
            v = 1.0 + c * x
            if v <= 0.0:
                continue
            v = v * v * v
            if math.log(self.uniform()) < 0.5 * x * x + d - d * v + d * math.log(v):
                return d * v

    def beta(self, alpha: float, beta: float) -> float:
        """A Beta(alpha, beta) number for ``alpha, beta >= 1``: X / (X + Y) of two gammas;
        from :data:`NORMAL_FROM` successes and failures on, the normal with the Beta's mean
        and variance (its skew is small by then, and it costs one normal, not two gammas)."""
        if alpha >= NORMAL_FROM and beta >= NORMAL_FROM:
            total = alpha + beta
            mean = alpha / total
            sd = math.sqrt(mean * (1.0 - mean) / (total + 1.0))
            return min(1.0, max(0.0, mean + sd * self.normal()))
        x = self.gamma(alpha)
        return x / (x + self.gamma(beta))
