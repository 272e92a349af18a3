"""Maps work offline: ``simulate --map`` and ``venues validate --map`` write one HTML file
with Leaflet inlined, and in a real Chromium with the network cut off the venues,
tracks and pushes show on a plain background (the tiles alone are missing)."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from server.assets import LEAFLET, vendored
from server.cli import main
from server.cli.maps import PUSH_ICON_CLASS
from tests.browser import OfflinePage
from tests.conftest import BEIJING_VENUES, FIXTURES, ROOT

FLAGSHIP = FIXTURES / "scenarios" / "helsinki_saturday_mall.yaml"
SCREENSHOTS = ROOT / "out" / "screenshots"


def _simulate_map(tmp_path: Path,
                  capsys: pytest.CaptureFixture[str]) -> tuple[Path, dict[str, Any]]:
    out = tmp_path / "flagship.html"
    assert main(["simulate", str(FLAGSHIP), "--json", "--map", str(out)]) == 0
    return out, json.loads(capsys.readouterr().out)


def test_map_file_links_nothing_outside_itself_and_ships_leaflet_with_its_licence(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page, _ = _simulate_map(tmp_path, capsys)
    text = page.read_text(encoding="utf-8")
    assert re.findall(r"<(?:script|link)\b[^>]*\b(?:src|href)=", text) == []
    for host in ("cdn.jsdelivr.net", "code.jquery.com", "cdnjs.cloudflare.com",
                 "bootstrapcdn.com"):
        assert host not in text
    assert vendored(f"{LEAFLET}/leaflet.js").decode() in text
    assert b"BSD 2-Clause" in vendored(f"{LEAFLET}/LICENSE")


def _painted_share(png: bytes) -> float:
    """The share of pixels that are neither the plain ground nor white."""
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int16)
    ground = (pixels == (0xEE, 0xF0, 0xF2)).all(axis=2) | (pixels == 0xFF).all(axis=2)
    return float(1.0 - ground.mean())


def _open(page: OfflinePage, path: Path) -> None:
    page.goto(path.as_uri())
    page.wait_for_selector("path.leaflet-interactive", state="attached")


def test_simulate_map_shows_venues_tracks_and_pushes_offline_in_chromium(
    offline_page: OfflinePage, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, result = _simulate_map(tmp_path, capsys)
    _open(offline_page, path)
    assert offline_page.evaluate("typeof L") == "object"  # Leaflet ran from the file
    paths = offline_page.locator("path.leaflet-interactive").count()
    users = {e["user_id"] for e in result["events"]}
    assert paths >= len(users) + 3  # venue outlines, a track per user, event dots
    pushes = offline_page.locator(f".{PUSH_ICON_CLASS}")
    assert pushes.count() == len(result["deliveries"]) > 0
    assert offline_page.get_by_text("trajectories").is_visible()  # the layer control
    # The tiles were asked for and refused: the network really was off.
    assert offline_page.blocked and all("tile.openstreetmap.org" in u
                                        for u in offline_page.blocked)
    png = offline_page.screenshot(full_page=True)
    assert _painted_share(png) > 0.01
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    (SCREENSHOTS / "simulate-map-offline.png").write_bytes(png)


def test_venues_validate_map_draws_every_beijing_station_offline_in_chromium(
    offline_page: OfflinePage, tmp_path: Path
) -> None:
    path = tmp_path / "venues.html"
    assert main(["venues", "validate", str(BEIJING_VENUES), "--map", str(path)]) in (0, 1)
    _open(offline_page, path)
    features = json.loads(BEIJING_VENUES.read_text(encoding="utf-8"))["features"]
    assert offline_page.locator("path.leaflet-interactive").count() >= len(features)
    png = offline_page.screenshot()
    assert _painted_share(png) > 0.002
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    (SCREENSHOTS / "venues-map-offline.png").write_bytes(png)


@pytest.mark.parametrize(("required", "outcome"), [("", "1 skipped"), ("1", "1 error")])
def test_without_chromium_browser_tests_skip_saying_why_unless_services_are_required(
    required: str, outcome: str
) -> None:
    env = {**os.environ, "GEOPUSH_CHROMIUM": "/nonexistent/chromium",
           "REQUIRE_SERVICES": required}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs",
         f"{Path(__file__)}::test_venues_validate_map_draws_every_beijing_station_offline_"
         "in_chromium"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
        check=False)
    assert outcome in proc.stdout, proc.stdout[-3000:]
    assert "no browser at /nonexistent/chromium" in proc.stdout
