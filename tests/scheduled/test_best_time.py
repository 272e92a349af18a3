"""``best_time``: each user's best whole hour inside the window from their local-hour
profile, else the fallback; the note says which."""

from __future__ import annotations

from triggers.decisions.best_time import best_time_times, choose_time, window_hours
from triggers.decisions.models import BestTime

EVENING_PERSON = [0.01] * 24
EVENING_PERSON[21], EVENING_PERSON[19], EVENING_PERSON[7] = 0.4, 0.2, 0.3
"""Most active at 21:00, then 07:00, then 19:00 (local)."""


def test_the_best_hour_inside_the_window_is_chosen_not_the_best_of_the_day() -> None:
    best = BestTime(fallback="10:00", window="09:00-21:00")
    choice = choose_time(best, EVENING_PERSON)
    assert choice.local_time == "19:00"
    assert choice.note == "best_time: 19:00, the user's best hour in 09:00-21:00 " \
                          "(send-time model)"


def test_a_user_without_enough_data_gets_the_fallback() -> None:
    choice = choose_time(BestTime(fallback="10:30", window="09:00-21:00"), None)
    assert choice.local_time == "10:30"
    assert "fallback 10:30" in choice.note


def test_a_window_across_midnight_and_ties_to_the_earlier_hour() -> None:
    best = BestTime(fallback="22:00", window="20:00-02:00")
    assert window_hours(best) == [0, 1, 20, 21, 22, 23]
    flat = [0.5] * 24
    assert choose_time(best, flat).local_time == "00:00"
    assert choose_time(best, EVENING_PERSON).local_time == "21:00"


def test_the_slots_are_the_window_hours_and_the_fallback() -> None:
    assert best_time_times(BestTime(fallback="08:15", window="07:00-10:00")) == (
        "07:00", "08:00", "08:15", "09:00")
