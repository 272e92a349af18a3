"""The trajectory generator: seeded, and its knobs do what they say."""

from __future__ import annotations

import numpy as np

from tests.triggers.builders import CENTER, T0, offset
from triggers.trajectory import CSV_HEADER, Go, TrajectorySpec, Wait, generate


def _spec(**kw: object) -> TrajectorySpec:
    return TrajectorySpec("u1", CENTER, (Go(offset(CENTER, 140, 0)), Wait(60)),
                          start_ts=T0, **kw)  # type: ignore[arg-type]


def test_same_seed_gives_the_same_pings() -> None:
    a, b = generate(_spec(noise_m=8), 3), generate(_spec(noise_m=8), 3)
    assert np.array_equal(a.lat, b.lat) and np.array_equal(a.ts, b.ts)
    assert not np.array_equal(a.lat, generate(_spec(noise_m=8), 4).lat)


def test_walk_takes_distance_over_speed_then_waits() -> None:
    cols = generate(_spec(), 0)
    assert cols.ts[-1] - T0 == 160.0  # 140 m at 1.4 m/s, then 60 s
    assert np.allclose(cols.speed_mps[:5], 1.4)


def test_gaps_remove_pings_and_bursts_arrive_late() -> None:
    cols = generate(_spec(gaps=((30.0, 50.0),), burst_rate=0.2, burst_delay_s=120), 1)
    offsets = cols.ts - T0
    assert not ((offsets >= 30) & (offsets < 80)).any()
    assert (cols.delivery_ts - cols.ts).max() >= 120


def test_csv_has_the_design_header_and_iso_times() -> None:
    text = generate(_spec(accuracy_m=None), 0).to_csv_text()
    header, first = text.splitlines()[:2]
    assert header == ",".join(CSV_HEADER)
    assert "+00:00" in first.split(",")[1] and first.split(",")[4] == ""
