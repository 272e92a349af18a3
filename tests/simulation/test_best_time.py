"""``best_time`` in the simulator: each world learns its users' send times from the events
it sees, on the virtual clock, and sends each user at the fallback until the model knows
her, then at her best hour in the window, with the service's note. The service and the
simulator choose the same hour from the same events."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from server.cli.scenario_files import load_scenario
from server.models import TenantModels, TrainingData, _sendtime_scorer, fit_sendtime
from triggers.behaviour.events import BehaviourEvent
from triggers.decisions.best_time import time_choice
from triggers.decisions.models import BestTime
from triggers.learning.coding import Vocabulary, kind_codes
from triggers.simulation import SimulationResult, simulate
from triggers.simulation.sendtime import SendTimeLearner

ROOT = Path(__file__).resolve().parents[2]
MALL = ROOT / "fixtures" / "scenarios" / "beijing_wudaokou_mall.geojson"
HELSINKI = ZoneInfo("Europe/Helsinki")
DAY = 86_400.0
START = datetime(2026, 11, 2, tzinfo=HELSINKI).timestamp()
BEST = BestTime(fallback="10:00", window="08:00-22:00")


def _evening_reader_scenario(tmp_path: Path) -> Path:
    """Ten days in Helsinki: Aino opens the app at 20:40 local every day from the first;
    Eero never opens it. A daily best_time campaign reaches both."""
    path = tmp_path / "best_time.yaml"
    path.write_text(f"""
name: best time learned on the virtual clock
start: 2026-11-02T00:00:00+02:00
end: 2026-11-12T00:00:00+02:00
timezone: Europe/Helsinki
venues: {MALL}
policy: {{default_timezone: Europe/Helsinki, max_per_day: 3}}
profiles:
  - {{user_id: aino, attributes: {{timezone: Europe/Helsinki}}}}
  - {{user_id: eero, attributes: {{timezone: Europe/Helsinki}}}}
event_generators:
  - user_id: aino
    generate: [{{kind: app_open, every_s: 86400, from: "2026-11-02T20:40:00+02:00"}}]
campaigns:
  - id: daily-tip
    trigger: {{scheduled: {{times: ["10:00"], best_time: {{fallback: "10:00",
               window: "08:00-22:00"}}}}}}
    variants: [{{id: a, title: "Hei", body: "Today's tip"}}]
""", encoding="utf-8")
    return path


def _sent(result: SimulationResult, user: str) -> list[tuple[str, str]]:
    """(Helsinki day and time, the decision's first note) of each push to ``user``."""
    return [(datetime.fromtimestamp(d.at, HELSINKI).strftime("%d %H:%M"), d.notes[0])
            for d in result.decisions if d.user_id == user and d.chosen is not None]


@pytest.fixture(scope="module")
def evening(tmp_path_factory: pytest.TempPathFactory) -> SimulationResult:
    return simulate(load_scenario(_evening_reader_scenario(tmp_path_factory.mktemp("bt"))))


def test_the_fallback_is_used_until_the_model_has_enough_of_the_users_events(
        evening: SimulationResult) -> None:
    sent = _sent(evening, "aino")
    assert sent[0] == ("02 10:00", "best_time: fallback 10:00 (not enough send-time data "
                                   "for this user)")
    # Her fifth app open is on the 6th at 20:40; the model trained at midnight sees it.
    assert [time for time, _ in sent[:5]] == ["02 10:00", "03 10:00", "04 10:00",
                                              "05 10:00", "06 10:00"]


def test_the_learned_hour_is_used_once_the_model_knows_the_user(
        evening: SimulationResult) -> None:
    sent = _sent(evening, "aino")
    assert sent[5:] == [(f"{day:02d} 20:00", "best_time: 20:00, the user's best hour in "
                                             "08:00-22:00 (send-time model)")
                        for day in range(7, 12)]


def test_a_user_who_never_opens_the_app_keeps_the_fallback_once_a_day(
        evening: SimulationResult) -> None:
    assert [time for time, _ in _sent(evening, "eero")] == [
        f"{day:02d} 10:00" for day in range(2, 12)]


def _events() -> list[BehaviourEvent]:
    """Three weeks of app opens and push opens: a morning, an evening and a lunchtime
    reader (local hours in three zones), and a user with too few events."""
    rng = np.random.default_rng(17)
    habits = {"mari": ("Europe/Helsinki", 8), "li": ("Asia/Shanghai", 20),
              "sam": ("America/New_York", 12)}
    events: list[BehaviourEvent] = []
    for day in range(21):
        for user, (zone, hour) in habits.items():
            local = datetime(2026, 10, 12, hour, int(rng.integers(0, 60)),
                             tzinfo=ZoneInfo(zone)) + timedelta(days=day)
            kind = "open" if day % 3 else "app_open"
            events.append(BehaviourEvent(user_id=user, ts=local.timestamp(), kind=kind))
    events.append(BehaviourEvent(user_id="new", ts=START - DAY, kind="app_open"))
    return sorted(events, key=lambda e: (e.ts, e.user_id))


@pytest.mark.parametrize(("user", "zone"), [
    ("mari", "Europe/Helsinki"), ("li", "Asia/Shanghai"), ("sam", "America/New_York"),
    ("mari", "Asia/Shanghai"), ("new", "Europe/Helsinki")])
def test_the_service_and_the_simulator_choose_the_same_hour_from_the_same_events(
        user: str, zone: str) -> None:
    events = _events()
    users = Vocabulary()
    data = TrainingData(users, Vocabulary(), users.index([e.user_id for e in events]),
                        np.full(len(events), -1, dtype=np.int64),
                        kind_codes([e.kind for e in events]),
                        np.array([e.ts for e in events], dtype=np.float64))
    scorer, enough = _sendtime_scorer(fit_sendtime(data, START).blob)
    service = TenantModels(sendtime=scorer, enough=enough)
    learner = SendTimeLearner(DAY, START)
    learner.observe_events(events)
    simulator = learner.view_at(START)
    slot_at = START + 10 * 3600
    assert simulator is not None
    service_choice = time_choice(BEST, service, user, zone, slot_at)
    simulator_choice = time_choice(BEST, simulator, user, zone, slot_at)
    assert service_choice == simulator_choice
    assert service_choice is not None
    # The model's hours are UTC, and the clocks went back in between (Helsinki on 25
    # October, New York on 1 November): Mari read at 08:00 summer time (05 UTC) for 13
    # days and at 08:00 winter time (06 UTC) for 8; Sam at 12:00 summer time (16 UTC)
    # for 20 days. On 2 November 05 UTC is 07:00 in Helsinki, outside the window (her
    # next best, 06 UTC, is 08:00), and 13:00 in Shanghai; 16 UTC is 11:00 in New York.
    expected = {("mari", "Europe/Helsinki"): "08:00", ("li", "Asia/Shanghai"): "20:00",
                ("sam", "America/New_York"): "11:00", ("mari", "Asia/Shanghai"): "13:00",
                ("new", "Europe/Helsinki"): "10:00"}
    assert service_choice.local_time == expected[(user, zone)]
