"""The upload's dry-run report carries each feature's outline whatever the file's
format, so the console draws a GeoPackage's, a zipped Shapefile's or a KML file's
features with their problems highlighted, as it does for GeoJSON. Over HTTP (the
embedded store: the report says nothing about storage)."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import aiohttp
import pytest

from tests.console.conftest import Api
from tests.console.venue_files import (
    BOW_TIE,
    SANLITUN,
    kml_bytes,
    polygon_feature,
    zipped_shapefile_bytes,
)
from tests.server.api.conftest import blockbuster  # noqa: F401

pytestmark = pytest.mark.asyncio(loop_scope="session")

FEATURES = [polygon_feature("sanlitun", "三里屯太古里", "mall", SANLITUN),
            polygon_feature("bow-tie", "Bow tie", "store", BOW_TIE)]


async def _report(api: Api, filename: str, data: bytes, query: str = "?dry_run=true",
                  ) -> dict[str, Any]:
    form = aiohttp.FormData()
    form.add_field("file", data, filename=filename)
    resp = await api.client.post("/v1/venues/import" + query, data=form, headers=api.auth())
    report: dict[str, Any] = await resp.json()
    assert resp.status == 200, report
    return report


def _ring(outline: dict[str, Any]) -> set[tuple[float, float]]:
    assert outline["geometry"]["type"] == "Polygon"
    return {(lng, lat) for lng, lat in outline["geometry"]["coordinates"][0]}


async def test_a_kml_dry_run_draws_the_bow_tie_as_it_is_and_flags_it(memory_api: Api) -> None:
    report = await _report(memory_api, "beijing.kml", kml_bytes(FEATURES))
    assert report["venues"] == ["sanlitun"]
    flagged = {p["feature_index"] for p in report["problems"] if p["severity"] == "error"}
    assert flagged == {1}
    good, bad = report["outlines"]
    assert (good["feature_index"], bad["feature_index"]) == (0, 1)
    assert _ring(good) == {(lng, lat) for lng, lat in SANLITUN}
    assert _ring(bad) == {(lng, lat) for lng, lat in BOW_TIE}  # the crossing shown, not fixed
    assert not good["simplified"] and good["radius_m"] is None


async def test_a_zipped_shapefile_dry_run_carries_every_features_outline(
    memory_api: Api,
) -> None:
    broken_kind = [FEATURES[0], polygon_feature("kiosk", "Kiosk", "shop", BOW_TIE)]
    data = await asyncio.to_thread(zipped_shapefile_bytes, broken_kind)
    report = await _report(memory_api, "beijing.zip", data)
    problems = {(p["feature_index"], p["field"]) for p in report["problems"]}
    assert (1, "properties.kind") in problems
    assert [o["feature_index"] for o in report["outlines"]] == [0, 1]
    # A Shapefile may turn the ring around; the corners are the file's.
    assert _ring(report["outlines"][0]) == {(lng, lat) for lng, lat in SANLITUN}


async def test_a_large_outline_is_simplified_for_the_map(memory_api: Api) -> None:
    # A 4,000-corner ring around the Sanlitun centre: real survey outlines come this dense.
    ring = [[116.4545 + 0.0015 * math.cos(2 * math.pi * i / 4000),
             39.93525 + 0.00125 * math.sin(2 * math.pi * i / 4000)] for i in range(4000)]
    ring.append(ring[0])
    report = await _report(memory_api, "dense.kml",
                           kml_bytes([polygon_feature("dense", "Dense", "mall", ring)]))
    [outline] = report["outlines"]
    assert outline["simplified"]
    assert 4 <= len(outline["geometry"]["coordinates"][0]) <= 1000


async def test_an_import_that_writes_carries_no_outlines(memory_api: Api) -> None:
    report = await _report(memory_api, "beijing.kml", kml_bytes(FEATURES), query="")
    assert report["imported"] == 1 and report["outlines"] == []
