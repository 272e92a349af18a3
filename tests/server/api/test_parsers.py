"""The location parsers alone: OwnTracks and OsmAnd / Traccar Client payloads from the
projects' docs, mapped to pings with the documented units."""

from __future__ import annotations

import pytest

from server.ingest.osmand import MPS_PER_KNOT, parse_osmand_params, parse_traccar_json
from server.ingest.owntracks import parse_owntracks
from tests.server.api.conftest import HELSINKI
from tests.server.api.test_ingest import OWNTRACKS_LOCATION

LAT, LNG = HELSINKI


def test_owntracks_location_maps_units_and_user() -> None:
    [p] = parse_owntracks(OWNTRACKS_LOCATION, header_user=None, header_device=None,
                          basic_user=None)
    assert (p.user_id, p.device_id, p.ts, p.lat, p.lng) == ("jane", "phone", 1772452790,
                                                            LAT, LNG)
    assert p.speed_mps == pytest.approx(5.0)  # 18 km/h
    assert (p.accuracy_m, p.altitude_m, p.heading_deg) == (12, 30, 270)


def test_owntracks_user_header_wins_over_topic() -> None:
    [p] = parse_owntracks(OWNTRACKS_LOCATION, header_user="bob", header_device="tab",
                          basic_user="x")
    assert (p.user_id, p.device_id) == ("bob", "tab")


def test_osmand_params_speed_is_knots_and_timestamp_any_unit() -> None:
    base = {"id": "123456", "lat": str(LAT), "lon": str(LNG), "speed": "10",
            "bearing": "90", "altitude": "12", "accuracy": "7", "batt": "88", "hdop": "1"}
    for stamp in ("1772452790", "1772452790000", "2026-03-02T11:59:50Z",
                  "2026-03-02 11:59:50"):
        [p], rejected = parse_osmand_params({**base, "timestamp": stamp}, now=0)
        assert rejected == [] and p.ts == 1772452790, stamp
        assert p.speed_mps == pytest.approx(10 * MPS_PER_KNOT)
        assert (p.user_id, p.heading_deg, p.altitude_m, p.accuracy_m) == ("123456", 90, 12, 7)
    [p], _ = parse_osmand_params({"deviceid": "d", "location": f"{LAT},{LNG}"}, now=5.0)
    assert (p.lat, p.lng, p.ts) == (LAT, LNG, 5.0)


def test_traccar_json_speed_is_metres_per_second() -> None:
    [p] = parse_traccar_json({
        "location": {"timestamp": "2026-03-02T11:59:50.000Z", "coords": {
            "latitude": LAT, "longitude": LNG, "accuracy": 5, "speed": 1.5, "heading": -1,
            "altitude": 20}, "is_moving": True, "odometer": 0, "event": "motionchange",
            "battery": {"level": 1, "is_charging": False}, "activity": {"type": "walking"},
            "extras": {}},
        "device_id": "48241179"}, now=0)
    assert p.ts == 1772452790 and p.speed_mps == 1.5 and p.heading_deg is None
    assert p.user_id == "48241179"
