"""A generator of behaviour events for evaluating the learning models, with its
assumptions written down (no public behaviour data set can be installed here).

The world, in :class:`World` knobs:
- Categories belong to themes (baby, sport, ...); a user is interested in one or two
  themes, with Dirichlet weights over the theme's categories, and keeps a share of
  attention for the global popularity (exploration).
- Interests drift: each week a user may take up a new theme, which then holds half of
  their attention.
- Popularity trends: each category's appeal follows a log random walk by week, shared by
  all users.
- Consumables: some categories are bought again on a cycle (7-30 days, ±15 %) by users who
  bought them once.
- Sessions: a user's sessions per day follow their activity (log-normal across users); a
  session is on one category: views, sometimes a cart, sometimes a purchase, and usually
  starts with an app_open.
- Active hours: each user belongs to a segment (morning, lunch, evening, night) whose
  hour-of-day profile they follow with individual noise (Dirichlet around the segment's
  profile); weekends start an hour later; a share of sessions fall at a random hour.
- Times are local in ``tz_offset_h`` and written as UTC epoch seconds.
Nothing here is tuned to the models: the knobs are set from what shops report (few
categories a user, strong repeat behaviour, evening peaks), and the second world differs
in seed and shape.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

DAY_S = 86_400
START_T = 1_767_225_600  # 2026-01-01T00:00:00Z, a Thursday


@dataclass(frozen=True)
class World:
    users: int = 3_000
    days: int = 56
    categories: int = 60
    themes: int = 10
    sessions_per_day: float = 0.4
    activity_sigma: float = 1.0
    explore: float = 0.15
    drift_per_week: float = 0.15
    trend_sigma: float = 0.25
    consumable_share: float = 0.2
    cart_p: float = 0.25
    purchase_p: float = 0.5
    app_open_p: float = 0.7
    random_hour_p: float = 0.15
    profile_concentration: float = 25.0
    tz_offset_h: int = 8
    seed: int = 1
    user_block: int = 20_000


SECOND_WORLD = World(users=4_000, days=42, categories=200, themes=25, sessions_per_day=0.25,
                     activity_sigma=1.3, explore=0.25, drift_per_week=0.3, trend_sigma=0.4,
                     consumable_share=0.1, random_hour_p=0.25, profile_concentration=10.0,
                     tz_offset_h=-5, seed=7)
"""A differently shaped world for a check: more categories, more drift and noise, fewer
events a user, another time zone."""

_SEGMENT_PEAKS = ((8.0, 1.5), (12.5, 1.2), (20.5, 2.0), (23.5, 1.5))


def segment_profiles() -> np.ndarray:
    hours = np.arange(24)
    base = []
    for peak, width in _SEGMENT_PEAKS:
        dist = np.minimum(np.abs(hours - peak), 24 - np.abs(hours - peak))
        profile = np.exp(-0.5 * (dist / width) ** 2) + 0.05
        base.append(profile / profile.sum())
    return np.array(base)


def events(world: World) -> Iterator[pd.DataFrame]:
    """The world's events, a block of users at a time (columns of the CSV contract,
    ``ts`` in epoch seconds)."""
    rng = np.random.default_rng(world.seed)
    theme_of = rng.integers(0, world.themes, world.categories)
    appeal = rng.pareto(1.2, world.categories) + 0.2
    weeks = world.days // 7 + 1
    trend = np.exp(np.cumsum(rng.normal(0, world.trend_sigma, (weeks, world.categories)),
                             axis=0))
    catalogue = _Catalogue(theme_of, appeal, trend,
                           rng.random(world.categories) < world.consumable_share,
                           rng.uniform(7, 30, world.categories), segment_profiles())
    for lo in range(0, world.users, world.user_block):
        n = min(world.user_block, world.users - lo)
        yield _block(world, np.random.default_rng([world.seed, lo]), lo, n, catalogue)


@dataclass(frozen=True)
class _Catalogue:
    """What all users share: themes, appeal and trends of categories, repeat cycles of
    consumables, the segments' hour profiles."""

    theme_of: np.ndarray
    appeal: np.ndarray
    trend: np.ndarray
    consumable: np.ndarray
    cycle_d: np.ndarray
    segments: np.ndarray


def _interests(world: World, rng: np.random.Generator, n: int,
               catalogue: _Catalogue) -> np.ndarray:
    """(n, weeks, C) attention of each user each week (rows sum to 1)."""
    c, theme_of, appeal = world.categories, catalogue.theme_of, catalogue.appeal
    weeks = catalogue.trend.shape[0]

    def theme_weights(themes: np.ndarray) -> np.ndarray:
        w = rng.gamma(0.5, 1.0, (n, c)) * appeal
        w *= theme_of[None, :] == themes[:, None]
        out: np.ndarray = w / np.maximum(w.sum(axis=1, keepdims=True), 1e-12)
        return out

    first = theme_weights(rng.integers(0, world.themes, n))
    two = rng.random(n) < 0.4
    second = theme_weights(rng.integers(0, world.themes, n))
    own = np.where(two[:, None], 0.6 * first + 0.4 * second, first)
    out = np.empty((n, weeks, c))
    for w in range(weeks):
        drift = rng.random(n) < (world.drift_per_week if w else 0.0)
        if drift.any():
            new = theme_weights(rng.integers(0, world.themes, n))
            own = np.where(drift[:, None], 0.5 * own + 0.5 * new, own)
        out[:, w] = own
    return out


def _block(world: World, rng: np.random.Generator, lo: int, n: int,
           catalogue: _Catalogue) -> pd.DataFrame:
    own = _interests(world, rng, n, catalogue)
    popular = catalogue.appeal / catalogue.appeal.sum()
    trend, segments = catalogue.trend, catalogue.segments
    activity = world.sessions_per_day * rng.lognormal(-world.activity_sigma ** 2 / 2,
                                                      world.activity_sigma, n)
    segment = rng.integers(0, len(segments), n)
    hour_profile = np.array([rng.dirichlet(world.profile_concentration * segments[s] + 1e-3)
                             for s in segment])
    counts = rng.poisson(activity * world.days)
    user = np.repeat(np.arange(n), counts)
    day = rng.integers(0, world.days, len(user))
    week = day // 7
    attention = (1 - world.explore) * own[user, week] + world.explore * popular
    attention = attention * trend[week]
    category = _sample_rows(rng, attention)
    hour = _sample_rows(rng, hour_profile[user]).astype(float)
    weekend = ((day + 3) % 7) >= 5  # day 0 is a Thursday
    hour = np.where(weekend, (hour + 1) % 24, hour)
    noisy = rng.random(len(user)) < world.random_hour_p
    hour = np.where(noisy, rng.integers(0, 24, len(user)), hour)
    local_t = day * DAY_S + hour * 3600 + rng.integers(0, 3600, len(user))
    sessions = _sessions_with_repeats(world, rng, (user, category, local_t), catalogue)
    return _session_events(world, rng, lo, sessions)


def _sample_rows(rng: np.random.Generator, weights: np.ndarray) -> np.ndarray:
    cdf = np.cumsum(weights, axis=1)
    pick = rng.random(len(weights)) * cdf[:, -1]
    picked: np.ndarray = np.minimum((cdf < pick[:, None]).sum(axis=1), weights.shape[1] - 1)
    return picked


def _sessions_with_repeats(world: World, rng: np.random.Generator,
                           sessions: tuple[np.ndarray, np.ndarray, np.ndarray],
                           catalogue: _Catalogue) -> tuple[np.ndarray, ...]:
    """Adds the repeat purchases of consumables after a first purchase session."""
    user, category, local_t = sessions
    consumable, cycle_d = catalogue.consumable, catalogue.cycle_d
    buys = rng.random(len(user)) < world.cart_p * world.purchase_p
    first = buys & consumable[category]
    extra_u, extra_c, extra_t = [], [], []
    t = local_t[first].astype(float)
    u, c = user[first], category[first]
    horizon = world.days * DAY_S
    while len(t):
        t = t + cycle_d[c] * DAY_S * rng.uniform(0.85, 1.15, len(t))
        keep = (t < horizon) & (rng.random(len(t)) < 0.8)
        t, u, c = t[keep], u[keep], c[keep]
        extra_u.append(u)
        extra_c.append(c)
        extra_t.append(t)
    all_u = np.concatenate([user, *extra_u])
    all_c = np.concatenate([category, *extra_c])
    all_t = np.concatenate([local_t, *extra_t]).astype(np.int64)
    all_buy = np.concatenate([buys, *(np.ones(len(x), bool) for x in extra_u)])
    return all_u, all_c, all_t, all_buy


def _session_events(world: World, rng: np.random.Generator, lo: int,
                    sessions: tuple[np.ndarray, ...]) -> pd.DataFrame:
    user, category, local_t, buys = sessions
    views = rng.geometric(0.45, len(user))
    carts = buys | (rng.random(len(user)) < world.cart_p * (1 - world.purchase_p))
    opens = rng.random(len(user)) < world.app_open_p
    parts = []
    utc = local_t - world.tz_offset_h * 3600 + START_T
    rows_u = np.repeat(user, views)
    rows_c = np.repeat(category, views)
    offset = np.arange(len(rows_u)) - np.repeat(np.cumsum(views) - views, views)
    parts.append((rows_u, np.repeat(utc, views) + 60 * (offset + 1), "view", rows_c))
    parts.append((user[opens], utc[opens], "app_open", np.full(opens.sum(), -1)))
    parts.append((user[carts], utc[carts] + 60 * (views[carts] + 1), "add_to_cart",
                  category[carts]))
    parts.append((user[buys], utc[buys] + 60 * (views[buys] + 2), "purchase", category[buys]))
    frames = []
    for u, t, kind, c in parts:
        frames.append(pd.DataFrame({
            "user_id": np.char.add("u", (u + lo).astype(str)),
            "ts": t.astype(np.int64),
            "kind": kind,
            "item_id": np.where(c >= 0, np.char.add("i", (c * 1000 + rng.integers(0, 50, len(c)))
                                                    .astype(str)), ""),
            "category": np.where(c >= 0, np.char.add("cat", c.astype(str)), ""),
        }))
    return pd.concat(frames, ignore_index=True)


def write_csv(world: World, path: str) -> int:
    """Writes the world's events to ``path`` (CSV contract); returns the number of rows."""
    return write_blocks(events(world), path)


def write_blocks(blocks: Iterable[pd.DataFrame], path: str) -> int:
    """Writes blocks of events to ``path`` as one CSV; returns the number of rows."""
    rows = 0
    for i, block in enumerate(blocks):
        block.to_csv(path, mode="w" if i == 0 else "a", header=i == 0, index=False)
        rows += len(block)
    return rows
