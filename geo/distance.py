"""Distances on the Earth, vectorised, and the local metric frames of fences.

Two models, each used where it is the contract:

- **Great-circle (haversine) distance** on a sphere of radius :data:`EARTH_RADIUS_M`
  (the IUGG mean Earth radius R1 = 6,371,008.8 m). A circle fence holds the points whose
  haversine distance to its centre is at most ``radius_m``; against the WGS84 geodesic
  this distance is off by at most 0.56 % (north-south near the equator), far below
  GPS accuracy for venue-sized circles, and it is
  cheap and the same everywhere (including the poles and the antimeridian).
- **Local frames** for polygon fences: an equirectangular projection about a reference
  point (``lat0``, ``lng0``) scaled by the WGS84 meridional (M) and prime-vertical (N)
  radii of curvature at ``lat0``::

      x = wrap(lng - lng0) * pi/180 * N(lat0) * cos(lat0)      (metres east)
      y = (lat - lat0)      * pi/180 * M(lat0)                 (metres north)

  It is an *affine* map of (lng, lat), so a polygon's straight lon/lat edges stay
  straight and "inside" is the same in both spaces; only lengths are approximated.
  Scale is exact along the reference parallel and meridian; east-west lengths at a
  distance ``dy`` north or south of ``lat0`` are off by about ``tan(lat0) * dy / R``.
  For a fence up to 50 km² (~7 km across, so ``dy`` ≤ ~3.7 km with the 200 m halo)
  that is ≤ 0.06 % at the equator-to-45° band, ≤ 0.1 % at 60° and ≤ 0.3 % at 78°
  (Svalbard) — within the project's 0.5 % budget up to about 83° latitude. Longitudes
  are unwrapped about ``lng0`` (``wrap`` maps to [-180, 180)), so a fence split at the
  antimeridian is contiguous in its frame.

Everything here is pure and works on numpy arrays (broadcasting as numpy does).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

EARTH_RADIUS_M = 6_371_008.8
"""Mean Earth radius (IUGG R1), metres: the sphere of the haversine distance."""

WGS84_A_M = 6_378_137.0
"""WGS84 semi-major axis, metres."""

WGS84_E2 = 6.694_379_990_141_316e-3
"""WGS84 first eccentricity squared."""


def haversine_m(
    lat1: ArrayLike, lng1: ArrayLike, lat2: ArrayLike, lng2: ArrayLike
) -> NDArray[np.float64]:
    """Great-circle distance in metres between points given in degrees (vectorised).

    Uses the haversine formula on the sphere of radius :data:`EARTH_RADIUS_M`; it is
    numerically stable for the short distances geofencing cares about. Arguments
    broadcast like numpy arrays; the result is always a float64 array.
    """
    p1 = np.radians(np.asarray(lat1, dtype=np.float64))
    p2 = np.radians(np.asarray(lat2, dtype=np.float64))
    dp = p2 - p1
    dl = np.radians(np.asarray(lng2, dtype=np.float64) - np.asarray(lng1, dtype=np.float64))
    h = np.sin(dp * 0.5) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl * 0.5) ** 2
    # min(1, .) guards arcsin against rounding just above 1 for antipodal points.
    out: NDArray[np.float64] = 2.0 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.minimum(h, 1.0)))
    return out


def frame_scales(lat0: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Metres per degree of longitude and of latitude at ``lat0`` (degrees), WGS84.

    Returns ``(kx, ky)`` for the local frame of the module docstring. ``kx`` is
    floored at 1 mm/degree so that a frame centred on a pole stays invertible.
    """
    phi = np.radians(np.asarray(lat0, dtype=np.float64))
    s2 = np.sin(phi) ** 2
    w = np.sqrt(1.0 - WGS84_E2 * s2)
    n_m = WGS84_A_M / w
    m_m = WGS84_A_M * (1.0 - WGS84_E2) / w**3
    deg = math.pi / 180.0
    kx = np.maximum(n_m * np.cos(phi) * deg, 1e-3)
    ky = m_m * deg
    return np.asarray(kx, dtype=np.float64), np.asarray(ky, dtype=np.float64)


def wrap_lng_delta(dlng: ArrayLike) -> NDArray[np.float64]:
    """A longitude difference in degrees mapped into [-180, 180)."""
    d = np.asarray(dlng, dtype=np.float64)
    out: NDArray[np.float64] = np.where(d >= 180.0, d - 360.0, np.where(d < -180.0, d + 360.0, d))
    return out


def to_local_xy(
    lat: ArrayLike,
    lng: ArrayLike,
    *,
    lat0: ArrayLike,
    lng0: ArrayLike,
    kx: ArrayLike,
    ky: ArrayLike,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Project degrees into local frames: metres east and north of (``lat0``, ``lng0``).

    ``kx``/``ky`` come from :func:`frame_scales` at ``lat0``; every argument broadcasts,
    so a batch of points can be projected each into its own fence's frame.
    """
    f64 = np.float64
    x = wrap_lng_delta(np.asarray(lng, dtype=f64) - np.asarray(lng0, dtype=f64))
    x = x * np.asarray(kx, dtype=f64)
    y = (np.asarray(lat, dtype=f64) - np.asarray(lat0, dtype=f64)) * np.asarray(ky, dtype=f64)
    return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
