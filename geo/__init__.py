"""geo: the pure geometry layer — coordinates, H3 cells, fences and the geofence index.

Nothing here does IO or reads the clock. Only this package converts between
``LatLng`` and shapely's (x=lng, y=lat) or h3's (lat, lng) axis orders.
"""

from geo.errors import GeoError
from geo.latlng import LatLng

__all__ = ["GeoError", "LatLng"]
