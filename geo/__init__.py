"""geo: the pure geometry layer — coordinates, H3 cells, fences and the geofence index.

Nothing here does IO or reads the clock. Only this package converts between
``LatLng`` and shapely's (x=lng, y=lat) or h3's (lat, lng) axis orders.
"""

from geo.distance import EARTH_RADIUS_M, haversine_m
from geo.errors import GeoError
from geo.fence import Fence
from geo.hits import IndexHits
from geo.index import GeofenceIndex
from geo.latlng import LatLng

__all__ = [
    "EARTH_RADIUS_M",
    "Fence",
    "GeoError",
    "GeofenceIndex",
    "IndexHits",
    "LatLng",
    "haversine_m",
]
