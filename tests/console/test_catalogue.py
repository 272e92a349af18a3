"""The console's words: every message a template asks for exists in English and in
Chinese, and the server-drawn figures cut a week of hours and scale bars as read."""

from __future__ import annotations

import re

from server.console.charts import (
    bar_chart,
    busiest,
    ctr_chart,
    stacked_over_time,
    stats_csv,
    week_view,
)
from server.console.files import TEMPLATES
from server.console.i18n import MESSAGES, translator

_USED = re.compile(r"""\bt\(\s*'([a-z_]+)'""")


def test_every_message_a_template_uses_exists_in_both_languages() -> None:
    used = {key for source in TEMPLATES.values() for key in _USED.findall(source)}
    assert len(used) > 60
    # Outcome states are asked for by value (t(s.state)): open, closed, unknown.
    used |= {"open", "closed", "unknown", "unknown_key", "role_not_allowed", "csrf_failed",
             *(f"wd{d}" for d in range(7))}
    for lang in ("en", "zh"):
        assert used - set(MESSAGES[lang]) == set(), lang
    assert set(MESSAGES["en"]) == set(MESSAGES["zh"])


def test_chinese_messages_fill_in_their_values() -> None:
    t = translator("zh")
    assert t("signed_in_as", tenant="acme", role="manager") == "已登录：租户 acme，角色 manager"
    assert translator("xx")("venues") == "Venues"  # an unknown language reads English


def test_a_span_past_midnight_is_cut_into_two_days() -> None:
    days = week_view([
        {"start": "2027-01-01T00:00:00+08:00", "end": "2027-01-02T10:00:00+08:00",
         "state": "closed", "comment": None},
        {"start": "2027-01-02T10:00:00+08:00", "end": "2027-01-02T22:00:00+08:00",
         "state": "open", "comment": "Sa"},
    ])
    assert [d.day.isoformat() for d in days] == ["2027-01-01", "2027-01-02"]
    assert [(s.x, s.width, s.state) for s in days[0].segments] == [(0.0, 100.0, "closed")]
    second = [(round(s.x, 2), round(s.width, 2), s.state) for s in days[1].segments]
    assert second == [(0.0, 41.67, "closed"), (41.67, 50.0, "open")]
    assert days[1].segments[1].label == "10:00–22:00"
    assert days[1].notes == ["Sa"]


def _rate(k: int, n: int, low: float | None, high: float | None) -> dict[str, object]:
    return {"successes": k, "trials": n, "rate": k / n if n else None, "low": low,
            "high": high}


def test_ctr_bars_share_the_scale_of_the_highest_upper_bound() -> None:
    variants = [{"variant_id": "a", "ctr": _rate(1, 4, 0.05, 0.7)},
                {"variant_id": "b", "ctr": _rate(0, 0, None, None)}]
    a, b = ctr_chart(variants)
    assert (a.width, a.low, a.high) == (35.71, 7.14, 100.0)
    assert a.value == "25.0% (1/4)"
    assert (b.value, b.width, b.low) == ("–", 0.0, None)
    assert [bar.width for bar in bar_chart({"sent": 4, "failed": 1, "dead": 0})] == [
        100.0, 25.0, 0.0]


def test_results_csv_has_a_row_per_variant() -> None:
    stats = {"campaign_id": "tea", "variants": [{
        "variant_id": "a", "deliveries": 5, "sends": 4, "ctr": _rate(1, 4, 0.05, 0.7),
        "conversion": _rate(1, 5, 0.04, 0.6),
        "lift": {"lift": 0.5, "p_value": 0.2}}]}
    lines = stats_csv(stats).splitlines()
    assert lines[0].startswith("campaign_id,variant_id,deliveries,sends,clicks,ctr")
    assert lines[1] == "tea,a,5,4,1,0.25,0.05,0.7,1,5,0.5,0.2"


def test_deliveries_over_time_stack_per_bucket_with_the_empty_hours_between() -> None:
    t0 = 1_797_000_000.0 - 1_797_000_000.0 % 3600
    rows = [(t0, "inbox", "sent", 3), (t0, "webhook", "failed", 1),
            (t0 + 7200, "inbox", "sent", 2)]
    stacks, names = stacked_over_time(rows, by="status", bucket_s=3600)
    assert names == ["failed", "sent"]
    # Twelve hours at least, ending with the last; the empty hour between is drawn.
    assert [len(s.segments) for s in stacks] == [0] * 9 + [2, 0, 1]
    assert stacks[9].segments == (("failed", 75.0, 25.0, 1), ("sent", 0.0, 75.0, 3))
    assert stacks[11].segments == (("sent", 50.0, 50.0, 2),)
    assert busiest(stacks) == 4
    by_channel, channels = stacked_over_time(rows, by="channel", bucket_s=3600)
    assert channels == ["inbox", "webhook"]
    assert by_channel[-1].label.endswith(":00")
