"""A fifth and a sixth generated world, written before any model was run on them: life
stages that follow one another, the shape of the founding brief's ``mother_baby`` shop.

The first four worlds (:mod:`tests.learning.synthetic`, :mod:`tests.learning.missions`)
draw a user's next categories from their own past attention, from drift no event
foretells, or from missions opened at random; in each, the oracle rankers in BENCHMARKS.md
showed that what is left to learn after the user's own counts is little. Real shops have
a signal those worlds lack: needs that move on in a known order. A pregnancy moves from
maternity wear to newborn diapers, then to the next diaper size, weaning food and toddler
toys; a move goes from boxes to furniture to decoration; a new dog from puppy food to adult
food. Whoever is in one stage this week is likely to be in the next stage's categories
soon, and other users who went that way before show which categories those are. This
world follows that shape:

- **Evergreen categories** (``evergreen``): Zipf popularity (exponent ``zipf``); each
  user keeps 2-6 favourites, drawn by popularity, with Dirichlet(0.7) weights.
- **Tracks** (``tracks``): each is a sequence of 3-5 stages of 2-4 categories of its own
  (categories of a stage weighted Dirichlet(2) for the whole population). A user follows
  none, one or two tracks (probabilities ``track_counts``). Stage lengths are gamma
  (shape 4) with mean ``stage_days``, drawn per user; a user enters the track at a time
  drawn uniformly from well before the window to its end, so at the start some users are
  midway, some finish during the window and some begin in it.
- **A stage change is gradual**: for ``linger_days`` after it, half of the track's share
  still goes to the stage before (using up what is left).
- **A session's category**: while in a track, ``track_share`` of the sessions go to the
  current stage (split between two tracks when in both); of the rest, ``explore`` go to a
  category drawn by popularity, the others to the user's favourites.
- **A season**: ``season_categories`` evergreen categories (gifts) are four times as
  appealing for everyone in the window's last ``season_days`` days but one week (a
  holiday that starts before the judged week and carries on into it).
- **Sessions and kinds**: sessions a day are Poisson with a rate drawn log-normal (mean
  ``sessions_per_day``, σ ``activity_sigma``); a session usually starts with an
  ``app_open`` (``app_open_p``), has geometric views (mean about 2.2), an ``add_to_cart``
  with ``cart_p`` and a ``purchase`` after it with ``purchase_p``.
- **Hours**: the segments' hour profiles of the first worlds (morning, lunch, evening,
  night) with individual Dirichlet noise, a share ``random_hour_p`` of sessions at a
  random hour, times local in ``tz_offset_h`` written as UTC epoch seconds.

The knobs were set from what a mother-and-baby or home shop would show (stages of one to
two months, a third of users in no track, most activity on evergreen categories), not
from any model's score. :data:`HELD_BACK_LIFE_STAGES` differs in seed, shape and zone,
and is run once, at the end, to check what was chosen on the first.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tests.learning.synthetic import segment_profiles, write_blocks

DAY_S = 86_400
START_T = 1_767_225_600  # 2026-01-01T00:00:00Z, a Thursday


@dataclass(frozen=True)
class LifeStageWorld:
    users: int = 8_000
    days: int = 112
    evergreen: int = 150
    zipf: float = 1.0
    tracks: int = 12
    track_counts: tuple[float, float, float] = (0.3, 0.5, 0.2)
    stage_days: float = 35.0
    linger_days: float = 7.0
    track_share: float = 0.45
    explore: float = 0.15
    season_categories: int = 5
    season_days: int = 14
    sessions_per_day: float = 0.35
    activity_sigma: float = 1.0
    app_open_p: float = 0.7
    cart_p: float = 0.25
    purchase_p: float = 0.5
    random_hour_p: float = 0.15
    profile_concentration: float = 20.0
    tz_offset_h: int = 8
    seed: int = 31
    user_block: int = 2_000


HELD_BACK_LIFE_STAGES = LifeStageWorld(
    users=10_000, days=84, evergreen=400, zipf=1.1, tracks=30, track_counts=(0.4, 0.45, 0.15),
    stage_days=28.0, linger_days=5.0, track_share=0.35, explore=0.25, season_categories=10,
    sessions_per_day=0.25, activity_sigma=1.3, random_hour_p=0.25, profile_concentration=10.0,
    tz_offset_h=-5, seed=47)
"""The sixth world: more categories and tracks, shorter stages, a smaller track share,
fewer events a user, another zone. Judged once, after the model was settled on the fifth."""


@dataclass(frozen=True)
class _Catalogue:
    """What all users share."""

    popularity: np.ndarray
    """Per evergreen category, its share of exploring sessions."""
    stages: list[list[np.ndarray]]
    """Per track, per stage: the stage's category ids."""
    stage_weights: list[list[np.ndarray]]
    season: np.ndarray
    """The evergreen categories that are in season at the end of the window."""
    segments: np.ndarray


def _catalogue(world: LifeStageWorld, rng: np.random.Generator) -> _Catalogue:
    popularity = rng.permutation(1.0 / np.arange(1, world.evergreen + 1) ** world.zipf)
    popularity /= popularity.sum()
    next_id = world.evergreen
    stages: list[list[np.ndarray]] = []
    weights: list[list[np.ndarray]] = []
    for _ in range(world.tracks):
        track, track_w = [], []
        for _ in range(int(rng.integers(3, 6))):
            n = int(rng.integers(2, 5))
            track.append(np.arange(next_id, next_id + n))
            track_w.append(rng.dirichlet(np.full(n, 2.0)))
            next_id += n
        stages.append(track)
        weights.append(track_w)
    season = rng.choice(world.evergreen, world.season_categories, replace=False)
    return _Catalogue(popularity, stages, weights, season, segment_profiles())


def n_categories(world: LifeStageWorld) -> int:
    """How many categories the world's catalogue has (evergreen and every stage's)."""
    cat = _catalogue(world, np.random.default_rng(world.seed))
    return world.evergreen + sum(len(s) for track in cat.stages for s in track)


def events(world: LifeStageWorld) -> Iterator[pd.DataFrame]:
    """The world's events, a block of users at a time (columns of the CSV contract, ``ts``
    in epoch seconds)."""
    catalogue = _catalogue(world, np.random.default_rng(world.seed))
    for lo in range(0, world.users, world.user_block):
        n = min(world.user_block, world.users - lo)
        rng = np.random.default_rng([world.seed, lo])
        sessions = [_user_sessions(world, rng, catalogue) for _ in range(n)]
        yield _session_events(world, rng, lo, sessions)


def _stage_by_day(world: LifeStageWorld, rng: np.random.Generator,
                  n_stages: int) -> tuple[np.ndarray, np.ndarray]:
    """Per day of the window: the user's stage in a track (-1 outside it), and the stage
    before during the days it lingers (-1 otherwise)."""
    lengths = rng.gamma(4.0, world.stage_days / 4.0, n_stages)
    ends = np.cumsum(lengths)
    entry = rng.uniform(-ends[-1], world.days)
    day = np.arange(world.days) + 0.5 - entry
    stage = np.searchsorted(ends, day, side="right")
    inside = (day >= 0) & (stage < n_stages)
    current = np.where(inside, stage, -1)
    since = day - np.r_[0.0, ends][np.minimum(stage, n_stages)]
    lingering = inside & (stage > 0) & (since < world.linger_days)
    return current, np.where(lingering, stage - 1, -1)


def _user_sessions(world: LifeStageWorld, rng: np.random.Generator,
                   cat: _Catalogue) -> tuple[np.ndarray, np.ndarray]:
    """One user's sessions: local seconds since the window's start, and categories."""
    n_fav = int(rng.integers(2, 7))
    favourites = rng.choice(world.evergreen, n_fav, replace=False, p=cat.popularity)
    fav_w = rng.dirichlet(np.full(n_fav, 0.7))
    n_tracks = int(rng.choice(3, p=world.track_counts))
    tracks = rng.choice(world.tracks, n_tracks, replace=False)
    timelines = [_stage_by_day(world, rng, len(cat.stages[t])) for t in tracks]
    sigma = world.activity_sigma
    rate = world.sessions_per_day * rng.lognormal(-sigma ** 2 / 2, sigma)
    n = rng.poisson(rate * world.days)
    day = rng.integers(0, world.days, n)
    category = np.empty(n, dtype=np.int64)
    season_on = world.days - world.season_days - 7
    appeal = cat.popularity.copy()
    in_season = appeal.copy()
    in_season[cat.season] *= 4.0
    appeal, in_season = appeal / appeal.sum(), in_season / in_season.sum()
    draw = rng.random(n)
    for i in range(n):
        d = int(day[i])
        active = [(t, cur[d], prev[d]) for t, (cur, prev) in zip(tracks, timelines, strict=True)
                  if cur[d] >= 0]
        if active and draw[i] < world.track_share:
            t, stage, before = active[int(rng.integers(0, len(active)))]
            if before >= 0 and rng.random() < 0.5:
                stage = before
            ids, w = cat.stages[t][stage], cat.stage_weights[t][stage]
            category[i] = ids[int(rng.choice(len(ids), p=w))]
        elif rng.random() < world.explore:
            p = in_season if season_on <= d < season_on + world.season_days + 7 else appeal
            category[i] = int(rng.choice(world.evergreen, p=p))
        else:
            category[i] = favourites[int(rng.choice(n_fav, p=fav_w))]
    profile = rng.dirichlet(world.profile_concentration * cat.segments[rng.integers(0, 4)] + 1e-3)
    hour = rng.choice(24, n, p=profile)
    noisy = rng.random(n) < world.random_hour_p
    hour = np.where(noisy, rng.integers(0, 24, n), hour)
    local_s = day * DAY_S + hour * 3600 + rng.integers(0, 3600, n)
    return local_s, category


def _session_events(world: LifeStageWorld, rng: np.random.Generator, lo: int,
                    sessions: list[tuple[np.ndarray, np.ndarray]]) -> pd.DataFrame:
    counts = np.array([len(s[0]) for s in sessions])
    user = np.repeat(np.arange(len(sessions)) + lo, counts)
    local_s = np.concatenate([s[0] for s in sessions]) if len(user) else np.empty(0, np.int64)
    category = np.concatenate([s[1] for s in sessions]) if len(user) else np.empty(0, np.int64)
    utc = local_s - world.tz_offset_h * 3600 + START_T
    views = rng.geometric(0.45, len(user))
    carts = rng.random(len(user)) < world.cart_p
    buys = carts & (rng.random(len(user)) < world.purchase_p)
    opens = rng.random(len(user)) < world.app_open_p
    offset = np.arange(views.sum()) - np.repeat(np.cumsum(views) - views, views)
    parts = [
        (np.repeat(user, views), np.repeat(utc, views) + 60 * (offset + 1), "view",
         np.repeat(category, views)),
        (user[opens], utc[opens], "app_open", np.full(int(opens.sum()), -1)),
        (user[carts], utc[carts] + 60 * (views[carts] + 1), "add_to_cart", category[carts]),
        (user[buys], utc[buys] + 60 * (views[buys] + 2), "purchase", category[buys]),
    ]
    frames = []
    for u, t, kind, c in parts:
        item = np.char.add("i", (c * 1000 + rng.integers(0, 40, len(c))).astype(str))
        frames.append(pd.DataFrame({
            "user_id": np.char.add("u", u.astype(str)),
            "ts": t.astype(np.int64),
            "kind": kind,
            "item_id": np.where(c >= 0, item, ""),
            "category": np.where(c >= 0, np.char.add("c", c.astype(str)), ""),
        }))
    return pd.concat(frames, ignore_index=True)


def write_csv(world: LifeStageWorld, path: str) -> int:
    """Writes the world's events to ``path`` (CSV contract); returns the number of rows."""
    return write_blocks(events(world), path)
