"""Helpers shared by the benchmark scripts: environment, timing, memory, tables, data.

Nothing here is a test; pytest does not collect this folder (no ``test_`` names).
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import gc
import json
import math
import os
import platform
import resource
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parents[2]
BEIJING_VENUES = ROOT / "fixtures" / "venues" / "beijing_venues.geojson"
OUT_DIR = ROOT / "out"

# Every throughput figure is "per core": the libraries that could fan out to a thread
# pool (h3ronpy through rayon, numpy's BLAS, OpenMP) are held to one thread. These must
# be in the environment before those libraries are imported, so run.py sets them first
# thing and child processes inherit them.
SINGLE_THREAD_ENV = {
    "RAYON_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
    "POLARS_MAX_THREADS": "1",
}

# Set (b) and the build sizes are placed around central Beijing.
CITY_LAT, CITY_LNG = 39.9, 116.4
_M_PER_DEG_LAT = 111_320.0

T = TypeVar("T")


def force_single_thread_env() -> None:
    """Put SINGLE_THREAD_ENV into os.environ (call before importing numpy)."""
    os.environ.update(SINGLE_THREAD_ENV)


# --------------------------------------------------------------------------- timing


@dataclass(frozen=True, slots=True)
class Timing:
    """One measurement: wall-clock seconds and this process's CPU seconds."""

    wall_s: float
    cpu_s: float


def timed(fn: Callable[[], T]) -> tuple[Timing, T]:
    """Run ``fn`` once after a full GC and return its timing and result."""
    gc.collect()
    c0, t0 = time.process_time(), time.perf_counter()
    result = fn()
    t1, c1 = time.perf_counter(), time.process_time()
    return Timing(t1 - t0, c1 - c0), result


def best(timings: Sequence[Timing]) -> Timing:
    """The fastest repetition by wall time: the least disturbed by other processes."""
    return min(timings, key=lambda t: t.wall_s)


# --------------------------------------------------------------------------- memory


def _proc_status_kb(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


class PeakRss:
    """Peak resident memory added by the code inside the ``with`` block, in MB.

    On Linux the kernel's high-water mark (VmHWM) is reset on entry by writing ``5`` to
    /proc/self/clear_refs, so ``peak_mb`` is (highest RSS inside the block) - (RSS on
    entry): it counts native allocations (GEOS, Rust) that tracemalloc cannot see.
    ``retained_mb`` is the RSS growth still there on exit, after a GC and malloc_trim.
    Elsewhere it falls back to the ru_maxrss growth, which is 0 when the process had
    already been bigger before the block.
    """

    def __init__(self) -> None:
        self.peak_mb = math.nan
        self.retained_mb = math.nan
        self.method = ""
        self._rss0_kb = 0
        self._maxrss0_kb = 0

    def __enter__(self) -> PeakRss:
        gc.collect()
        try:
            Path("/proc/self/clear_refs").write_text("5")
            self.method = "VmHWM reset"
        except OSError:
            self.method = "ru_maxrss growth"
        self._rss0_kb = _proc_status_kb("VmRSS") or 0
        self._maxrss0_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return self

    def __exit__(self, *exc: object) -> None:
        # Give freed heap back to the OS first, so "retained" is what the result holds,
        # not what malloc kept cached (glibc only; elsewhere this is a no-op).
        gc.collect()
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        rss1 = _proc_status_kb("VmRSS")
        if self.method == "VmHWM reset":
            hwm = _proc_status_kb("VmHWM") or 0
            self.peak_mb = max(0, hwm - self._rss0_kb) / 1024
        else:
            maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            self.peak_mb = max(0, maxrss - self._maxrss0_kb) / 1024
        if rss1 is not None:
            self.retained_mb = (rss1 - self._rss0_kb) / 1024


# --------------------------------------------------------------------------- output


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain fixed-width table; numbers right-aligned, text left-aligned."""
    cells = [[str(h) for h in headers]] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    numeric = [
        all(_is_number(row[i]) for row in rows if row[i] not in ("", None)) and bool(rows)
        for i in range(len(headers))
    ]

    def line(r: Sequence[str]) -> str:
        return "  ".join(
            c.rjust(w) if num else c.ljust(w) for c, w, num in zip(r, widths, numeric, strict=True)
        ).rstrip()

    sep = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), sep, *(line(r) for r in cells[1:])])


def _is_number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _cell(v: object) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        if math.isnan(v):
            return "-"
        if abs(v) >= 1e5:
            return f"{v:,.0f}"
        if abs(v) >= 100:
            return f"{v:.0f}"
        if abs(v) >= 10:
            return f"{v:.1f}"
        if abs(v) >= 0.1 or v == 0:
            return f"{v:.2f}"
        return f"{v:.3f}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return str(v)


def fmt_rate(points_per_s: float) -> str:
    """1234567.0 -> '1.23 M/s'."""
    if math.isnan(points_per_s):
        return "-"
    if points_per_s >= 1e6:
        return f"{points_per_s / 1e6:.2f} M/s"
    return f"{points_per_s / 1e3:.0f} k/s"


def machine_info() -> dict[str, Any]:
    """CPU model, cores, memory, OS, Python and library versions, and the date."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = math.nan
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gib = int(line.split()[1]) / 1024**2
                break
    except OSError:
        pass
    versions: dict[str, str] = {}
    for mod in ("numpy", "shapely", "geopandas", "h3", "h3ronpy", "asyncpg"):
        try:
            versions[mod] = str(__import__(mod).__version__)
        except Exception:  # a missing or broken optional library is just not listed
            continue
    with contextlib.suppress(ImportError):
        import shapely  # noqa: PLC0415

        versions["geos"] = shapely.geos_version_string
    try:
        load = os.getloadavg()
    except OSError:
        load = (math.nan, math.nan, math.nan)
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_gib, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "versions": versions,
        "loadavg_at_start": [round(x, 2) for x in load],
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "threads_env": {k: os.environ.get(k, "") for k in SINGLE_THREAD_ENV},
    }


def write_json(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, default=_json_default) + "\n")


def _json_default(o: object) -> object:
    if hasattr(o, "tolist"):
        return o.tolist()
    if isinstance(o, float) and math.isnan(o):
        return None
    return str(o)


# --------------------------------------------------------------------------- data
# _LAZY: numpy and shapely are imported inside the functions below, never at the top of
# this module, because run.py imports this module to set SINGLE_THREAD_ENV and that must
# happen before numpy (and its BLAS) is loaded.


def load_beijing_venues() -> tuple[list[str], list[Any]]:
    """The shipped Beijing venues as (ids, shapely geometries in lon/lat degrees).

    Read with json + shapely directly so the benchmark does not depend on the venues
    package. All 372 features are Polygons (the OSM-derived station circles are already
    polygons in the file).
    """
    from shapely.geometry import shape  # noqa: PLC0415  (see _LAZY above)

    data = json.loads(BEIJING_VENUES.read_text(encoding="utf-8"))
    ids: list[str] = []
    geoms: list[Any] = []
    for i, feature in enumerate(data["features"]):
        ids.append(str(feature.get("id") or feature["properties"].get("id") or f"bj{i}"))
        geoms.append(shape(feature["geometry"]))
    return ids, geoms


def box_around(lat: float, lng: float, side_m: float) -> tuple[float, float, float, float]:
    """(min_lng, min_lat, max_lng, max_lat) of a square ``side_m`` across centred there."""
    half_lat = side_m / 2 / _M_PER_DEG_LAT
    half_lng = side_m / 2 / (_M_PER_DEG_LAT * math.cos(math.radians(lat)))
    return (lng - half_lng, lat - half_lat, lng + half_lng, lat + half_lat)


def synthetic_venues(
    n: int,
    *,
    side_m: float,
    seed: int,
    lat: float = CITY_LAT,
    lng: float = CITY_LNG,
    min_across_m: float = 100.0,
    max_across_m: float = 500.0,
) -> tuple[list[str], list[Any]]:
    """``n`` seeded, valid polygons 100-500 m across, centres uniform in a square box.

    The mix imitates a city's venue layer: 70 % irregular star-shaped outlines (5-16
    vertices, sorted angles, so always simple), 20 % rotated rectangles (buildings), 10 %
    outlines with a courtyard hole. Only polygons, so the baselines see exactly the
    geometry the index sees (no circle-to-polygon approximation to argue about).
    """
    import numpy as np  # noqa: PLC0415
    import shapely  # noqa: PLC0415

    rng = np.random.default_rng(seed)
    min_lng, min_lat, max_lng, max_lat = box_around(lat, lng, side_m)
    c_lat = rng.uniform(min_lat, max_lat, n)
    c_lng = rng.uniform(min_lng, max_lng, n)
    across = rng.uniform(min_across_m, max_across_m, n)
    kind = rng.uniform(0.0, 1.0, n)
    ids: list[str] = []
    geoms: list[Any] = []
    for i in range(n):
        r = across[i] / 2
        m_per_deg_lng = _M_PER_DEG_LAT * math.cos(math.radians(c_lat[i]))
        holes: list[Any] = []
        if kind[i] < 0.2:
            theta = rng.uniform(math.radians(20), math.radians(70))
            w, h = r * math.cos(theta), r * math.sin(theta)
            rot = rng.uniform(0, math.pi)
            corners = np.array([[-w, -h], [w, -h], [w, h], [-w, h]])
            c, s = math.cos(rot), math.sin(rot)
            xy = corners @ np.array([[c, s], [-s, c]])
        else:
            k = int(rng.integers(5, 17))
            angles = (np.arange(k) + rng.uniform(-0.35, 0.35, k)) * (2 * math.pi / k)
            angles += rng.uniform(0, 2 * math.pi)
            radii = r * rng.uniform(0.55, 1.0, k)
            xy = np.column_stack([radii * np.cos(angles), radii * np.sin(angles)])
            if kind[i] >= 0.9:
                # A courtyard well inside the smallest radius keeps the polygon valid.
                ha = np.linspace(0, 2 * math.pi, 9)[:-1]
                holes.append(np.column_stack([0.3 * r * np.cos(ha), 0.3 * r * np.sin(ha)]))

        def to_deg(ring: Any, i: int = i, m_per_deg_lng: float = m_per_deg_lng) -> Any:
            return np.column_stack(
                [c_lng[i] + ring[:, 0] / m_per_deg_lng, c_lat[i] + ring[:, 1] / _M_PER_DEG_LAT]
            )

        geoms.append(shapely.Polygon(to_deg(xy), [to_deg(h) for h in holes]))
        ids.append(f"syn{i}")
    return ids, geoms


def uniform_points(
    n: int, bounds: tuple[float, float, float, float], seed: int
) -> tuple[Any, Any]:
    """``n`` seeded points uniform in ``bounds`` (min_lng, min_lat, max_lng, max_lat).

    Returns (lat, lng) float64 arrays: the form pings arrive in.
    """
    import numpy as np  # noqa: PLC0415

    rng = np.random.default_rng(seed)
    min_lng, min_lat, max_lng, max_lat = bounds
    lat = rng.uniform(min_lat, max_lat, n)
    lng = rng.uniform(min_lng, max_lng, n)
    return lat, lng
