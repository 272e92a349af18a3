"""Plots and the timeline read in Chinese: venue names drawn with a CJK font when one is
installed, else in a form the fonts can draw (never empty boxes); the terminal timeline
keeps its columns with wide characters; colours stay distinct past ten venues; the A/B
plot shows each arm and the control group."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import pytest
from wcwidth import wcswidth

from server.cli.render import (
    PlotFonts,
    arm_counts,
    distinct_colours,
    fit,
    render_plot,
    timeline_lines,
)
from server.cli.scenario_files import load_scenario
from tests.conftest import BEIJING_VENUES, FIXTURES
from triggers.simulation import Scenario, SimulationResult, simulate

_FEATURES = json.loads(BEIJING_VENUES.read_text(encoding="utf-8"))["features"]
# Twelve stations with Chinese names and English ones in their metadata.
STATIONS = [f["properties"] for f in _FEATURES
            if f["properties"]["kind"] == "transit_station"][:12]


def _beijing_scenario(tmp_path: Path) -> Path:
    """Twelve riders, each into another station: twelve venues named in Chinese."""
    riders = "\n".join(
        f'  - {{user_id: "乘客{i:02d}", generate: {{route: [entrance, "venue:{s["id"]}", '
        f'"wait:400"], interval_s: 10, start_offset_s: {60 * i}}}}}'
        for i, s in enumerate(STATIONS))
    path = tmp_path / "beijing.yaml"
    path.write_text(
        "name: 北京 twelve stations\nstart: 2026-11-25T07:55:00+08:00\n"
        f"timezone: Asia/Shanghai\nvenues: {BEIJING_VENUES}\ntrajectories:\n{riders}\n",
        encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def beijing(tmp_path_factory: pytest.TempPathFactory) -> tuple[Scenario, SimulationResult]:
    scenario = load_scenario(_beijing_scenario(tmp_path_factory.mktemp("bj")))
    return scenario, simulate(scenario, track_users=30)


def _render_without_warnings(beijing: tuple[Scenario, SimulationResult], path: Path,
                             fonts: list[str] | None) -> None:
    scenario, result = beijing
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "Glyph ... missing from font(s)" is a UserWarning
        render_plot(result, scenario, path, fonts=fonts)
    assert path.stat().st_size > 10_000


def test_beijing_plot_draws_every_name_with_the_fonts_installed(
    beijing: tuple[Scenario, SimulationResult], tmp_path: Path
) -> None:
    _render_without_warnings(beijing, tmp_path / "plot.png", None)
    fonts = PlotFonts(None)
    if os.environ.get("REQUIRE_SERVICES") == "1":  # CI installs fonts-noto-cjk
        assert len(fonts.family) == 2 and "CJK" in fonts.family[1]
    scenario, _ = beijing
    venue = scenario.venues_by_id[STATIONS[0]["id"]]
    assert fonts.venue_label(venue, venue.id) in (venue.name, venue.metadata["name_en"])
    assert fonts.can_draw(fonts.venue_label(venue, venue.id))


def test_without_a_cjk_font_the_plot_uses_english_names_and_escapes_the_rest(
    beijing: tuple[Scenario, SimulationResult], tmp_path: Path
) -> None:
    _render_without_warnings(beijing, tmp_path / "plot.png", ["DejaVu Sans"])
    fonts = PlotFonts(["DejaVu Sans"])
    scenario, _ = beijing
    venue = scenario.venues_by_id[STATIONS[0]["id"]]
    assert not fonts.can_draw(venue.name)
    assert fonts.venue_label(venue, venue.id) == venue.metadata["name_en"]
    assert fonts.plain("乘客01") == "\\u4e58\\u5ba201"


def test_colours_stay_distinct_far_past_ten_venues() -> None:
    for n in (1, 10, 11, 12, 20, 21, 60):
        colours = distinct_colours(n)
        assert len(colours) == n == len(set(colours))


def test_timeline_keeps_its_columns_with_chinese_names(
    beijing: tuple[Scenario, SimulationResult],
) -> None:
    scenario, result = beijing
    lines = [ln for ln in timeline_lines(result, scenario, 400)
             if not ln.startswith("──")]
    assert len(lines) >= 24
    # The event column starts at the same terminal column on every line.
    starts = {wcswidth(ln[:min(ln.index(w) for w in ("enter", "dwell", "exit") if w in ln)])
              for ln in lines}
    assert len(starts) == 1
    assert fit("西二旗站", 5) == "西二 " and fit("Xierqi", 3) == "Xie"


def test_ab_plot_counts_each_arm_and_the_control_group(tmp_path: Path) -> None:
    source = (FIXTURES / "scenarios" / "ab_test_2000_users.yaml").read_text(encoding="utf-8")
    text = (source.replace("count: 2000", "count: 300")
            .replace("venues: ../venues/", f"venues: {FIXTURES / 'venues'}/")
            .split("\nexpect:")[0])
    path = tmp_path / "ab.yaml"
    path.write_text(text, encoding="utf-8")
    scenario = load_scenario(path)
    result = simulate(scenario, track_users=30)
    arms = {label: (n, control) for label, n, control in arm_counts(result)}
    assert set(arms) == {"forum-winter-sale / discount", "forum-winter-sale / gift",
                         "forum-winter-sale / control (held out)"}
    assert arms["forum-winter-sale / control (held out)"][1] is True
    assert sum(n for n, _ in arms.values()) == len(
        {d.user_id for d in result.deliveries}) + arms[
        "forum-winter-sale / control (held out)"][0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        render_plot(result, scenario, tmp_path / "ab.png")
    assert (tmp_path / "ab.png").stat().st_size > 10_000
