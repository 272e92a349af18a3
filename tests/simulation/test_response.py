"""The simulated response: seeded opens and clicks from latent traits, fed back so the
learning options learn, and CTR per policy, campaign and variant with Wilson intervals
and the lift of one policy over another on the same events (Forum, Helsinki; venues
© OpenStreetMap contributors, ODbL 1.0)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import yaml

from server.cli import main
from server.cli.scenario_files import ScenarioFileError, load_scenario
from triggers.simulation import simulate
from triggers.simulation.response import (
    ResponseModel,
    ResponseTally,
    Traits,
    click_chance,
    lift_report,
    open_chance,
    ratio_interval,
    respond,
)

VENUES = Path(__file__).resolve().parents[2] / "fixtures" / "venues" / "helsinki_venues.geojson"
FORUM = "osm:way/289767497"
ARMS = [{"id": "discount", "title": "-30 % on winter coats", "body": "Today only at Forum"},
        {"id": "gift", "title": "A free scarf with any coat", "body": "Today only at Forum"}]


def _sale(optimize: str) -> dict[str, Any]:
    return {"id": "forum-winter-sale", "trigger": {"event": "dwell", "dwell_s": 300},
            "venues": {"ids": [FORUM]}, "control_pct": 10, "optimize": optimize,
            "variants": ARMS}


def _scenario(tmp_path: Path, *, shoppers: int = 300, seed: int = 2026,
              response: bool = True) -> Path:
    """Shoppers dwell in Forum once each over six hours. They care about coats (an
    opened coat offer is clicked half the time) far more than scarves (one in ten)."""
    doc: dict[str, Any] = {
        "name": "Thompson against a fixed split", "start": "2026-11-28T10:00:00+02:00",
        "timezone": "Europe/Helsinki", "seed": seed, "batch_s": 60, "venues": str(VENUES),
        "policy": {"max_per_day": 3, "min_gap_s": 1800},
        "campaigns": [_sale("thompson")],
        "users": {"count": shoppers, "id_prefix": "shopper-", "start_spread_s": 21600,
                  "profile": {"attributes": {"timezone": "Europe/Helsinki"}},
                  "traits": {"interests": {"coats": 0.5, "scarves": 0.1},
                             "channel_habits": {"inbox": 0.6}},
                  "generate": {"route": [f"near:{FORUM}~300", "entrance", f"venue:{FORUM}",
                                         "wait:600-900", f"near:{FORUM}~300"],
                               "interval_s": 30, "noise_m": 3, "accuracy_m": 8}},
    }
    if response:
        doc["response"] = {"policy_name": "thompson",
                           "content_tags": {"forum-winter-sale/discount": ["coats"],
                                            "forum-winter-sale/gift": ["scarves"]}}
        doc["compare"] = {"name": "fixed-split", "campaigns": [_sale("fixed")]}
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def thompson_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    path = _scenario(tmp_path_factory.mktemp("response"))
    report = simulate(load_scenario(path), keep_records=False).response
    assert report is not None
    return report


def test_thompson_beats_the_fixed_split_on_the_same_shoppers(
    thompson_run: dict[str, Any],
) -> None:
    thompson = thompson_run["policies"]["thompson"]["campaigns"]["forum-winter-sale"]
    fixed = thompson_run["policies"]["fixed-split"]["campaigns"]["forum-winter-sale"]
    # The fixed split sends both arms alike; Thompson moves the traffic to the coat offer.
    assert fixed["variants"]["gift"]["pushes"] > 0.35 * fixed["pushes"]
    assert thompson["variants"]["discount"]["pushes"] > 0.75 * thompson["pushes"]
    lift = thompson_run["lift"]
    assert (lift["policy"], lift["over"]) == ("thompson", "fixed-split")
    assert lift["lift"] > 0.2 and lift["low"] < lift["lift"] < lift["high"]
    assert lift["ctr"] > lift["other_ctr"]


def test_ctr_carries_wilson_intervals_per_policy_campaign_and_variant(
    thompson_run: dict[str, Any],
) -> None:
    for policy in thompson_run["policies"].values():
        campaign = policy["campaigns"]["forum-winter-sale"]
        for entry in (policy, campaign, *campaign["variants"].values()):
            ctr = entry["ctr"]
            assert ctr["rate"] == round(entry["clicks"] / entry["pushes"], 4)
            assert ctr["low"] <= ctr["rate"] <= ctr["high"]
            assert entry["clicks"] <= entry["opens"] <= entry["pushes"]
        # The control group (10 %) gets nothing, so it has no clicks to count.
        assert 0.8 * 300 <= policy["pushes"] <= 0.95 * 300


def test_same_seed_same_json_another_seed_other_draws(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    path = _scenario(tmp_path, shoppers=60)
    outputs = []
    for _ in range(2):
        assert main(["simulate", str(path), "--json"]) == 0
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1]
    assert "response" in json.loads(outputs[0])["summary"]
    (tmp_path / "other").mkdir()
    other = _scenario(tmp_path / "other", shoppers=60, seed=7)
    assert main(["simulate", str(other), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["summary"]["response"] != \
        json.loads(outputs[0])["summary"]["response"]


def test_readable_output_prints_ctr_and_lift(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", str(_scenario(tmp_path, shoppers=60))]) == 0
    out = capsys.readouterr().out
    assert "Simulated response" in out
    assert "CTR lift of thompson over fixed-split" in out


def test_without_a_response_model_the_summary_has_no_response(tmp_path: Path) -> None:
    scenario = load_scenario(_scenario(tmp_path, shoppers=20, response=False))
    assert "response" not in simulate(scenario, keep_records=False).summary()


def test_compare_without_a_response_model_is_an_error_naming_it(tmp_path: Path) -> None:
    path = _scenario(tmp_path, shoppers=5, response=False)
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    doc["compare"] = {"name": "before", "policy": {"max_per_day": -1}}
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    with pytest.raises(ScenarioFileError, match="compare"):
        load_scenario(path)


# ----------------------------------------------------------------- the model, by hand

MODEL = ResponseModel(open_rate=0.3, inactive_factor=0.2, default_interest=0.05)
MOTHER = Traits(interests={"mother_baby": 0.4}, active_hours=("09:00-12:00", "20:00-23:00"),
                channel_habits={"fcm": 0.5}, fatigue=0.7)


@pytest.mark.parametrize(("channel", "clock", "recent", "expected"), [
    ("fcm", "10:00", 0, 0.5),                          # her habit, active, rested
    ("email", "10:00", 0, 0.3),                        # a channel she has no habit on
    ("fcm", "15:00", 0, 0.5 * 0.2),                    # outside her active hours
    ("fcm", "21:30", 2, 0.5 * math.exp(-1.4)),         # tired by two pushes today
])
def test_open_chance(channel: str, clock: str, recent: int, expected: float) -> None:
    hour, minute = (int(x) for x in clock.split(":"))
    assert open_chance(MODEL, MOTHER, channel, hour * 60 + minute, recent) == \
        pytest.approx(expected)


def test_click_chance_is_the_best_matching_interest() -> None:
    assert click_chance(MODEL, MOTHER, ("mother_baby", "toys")) == 0.4
    assert click_chance(MODEL, MOTHER, ("electronics",)) == 0.05
    assert click_chance(MODEL, MOTHER, ()) == 0.05


def test_respond_is_deterministic_and_follows_the_chances() -> None:
    kwargs: dict[str, Any] = {"seed": 1, "user_id": "mei", "channel": "fcm",
                              "tags": ("mother_baby",), "minute": 600, "recent": 0}
    first = respond(MODEL, MOTHER, delivery_key="k1", **kwargs)
    assert first == respond(MODEL, MOTHER, delivery_key="k1", **kwargs)
    draws = [respond(MODEL, MOTHER, delivery_key=f"k{n}", **kwargs) for n in range(4000)]
    opened = sum(r.opened for r in draws) / len(draws)
    clicked = sum(r.clicked for r in draws) / len(draws)
    assert opened == pytest.approx(0.5, abs=0.03)
    assert clicked == pytest.approx(0.5 * 0.4, abs=0.03)
    assert all(r.opened for r in draws if r.clicked)


def test_ratio_interval_by_the_log_method() -> None:
    ratio, low, high = ratio_interval(60, 300, 30, 300) or (0.0, 0.0, 0.0)
    se = math.sqrt(1 / 60 - 1 / 300 + 1 / 30 - 1 / 300)
    assert ratio == pytest.approx(2.0)
    assert (low, high) == pytest.approx((2 * math.exp(-1.959964 * se),
                                         2 * math.exp(1.959964 * se)))
    assert ratio_interval(0, 300, 30, 300) is None


def test_lift_report_of_two_tallies() -> None:
    a, b = ResponseTally(), ResponseTally()
    a.pushes[("c", "v")], a.opens[("c", "v")], a.clicks[("c", "v")] = 300, 150, 60
    b.pushes[("c", "v")], b.opens[("c", "v")], b.clicks[("c", "v")] = 300, 150, 30
    lift = lift_report("learned", a, "before", b)
    assert (lift["ctr"], lift["other_ctr"], lift["lift"]) == (0.2, 0.1, 1.0)
    assert lift["low"] > 0 and lift["p_value"] < 0.01
    report = a.report()
    # Wilson, 60 of 300: centre 0.2038, half-width 0.0451.
    assert report["ctr"] == {"rate": 0.2, "low": 0.1587, "high": 0.2489}


def test_learned_caps_hold_back_a_shopper_who_never_opens(tmp_path: Path) -> None:
    """Three malls in a day (the daily-cap fixture) with a cap of three: the shopper who
    opens nothing is held to two once two pushes went unopened; the one who opens every
    push keeps the tenant's three; without learned caps both get three."""
    fixture = Path(__file__).resolve().parents[2] / "fixtures" / "scenarios"
    doc = yaml.safe_load((fixture / "daily_cap_three_malls.yaml").read_text(encoding="utf-8"))
    doc["venues"] = str(VENUES)
    doc["policy"] = {"max_per_day": 3, "min_gap_s": 1800, "learned_caps": True}
    doc["profiles"].append({**doc["profiles"][0], "user_id": "fan"})
    doc["trajectories"].append({**doc["trajectories"][0], "user_id": "fan"})
    doc.pop("expect")
    doc["response"] = {"policy_name": "learned caps", "users": {
        "shopper": {"channel_habits": {"inbox": 0.0}},
        "fan": {"channel_habits": {"inbox": 1.0}}}}
    doc["compare"] = {"name": "tenant cap", "policy": {"learned_caps": False}}
    path = tmp_path / "three_malls.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    result = simulate(load_scenario(path))
    pushed = {user: [d.campaign_id for d in result.deliveries if d.user_id == user]
              for user in ("shopper", "fan")}
    assert pushed == {"shopper": ["forum-fashion", "citycenter-fashion"],
                      "fan": ["forum-fashion", "citycenter-fashion", "kluuvi-fashion"]}
    [held] = [line for d in result.decisions for line in d.considered
              if d.user_id == "shopper" and line.campaign_id == "kluuvi-fashion"]
    assert str(held.reason) == "learned_cap"
    assert held.detail == ("opened 0/2 pushes in 7 days (p_open 0.25): learned cap 2 of 3; "
                           "2 today")
    assert result.response is not None
    policies = result.response["policies"]
    assert (policies["learned caps"]["pushes"], policies["tenant cap"]["pushes"]) == (5, 6)
    assert policies["learned caps"]["opens"] == policies["tenant cap"]["opens"] == 3
