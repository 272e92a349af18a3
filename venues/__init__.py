"""venues: the venue model, validation, file import and catalogue snapshots.

``load_venues(path)`` reads and validates a venue file; ``parse_feature_collection``
does the same for GeoJSON already parsed (an HTTP body). Both return a
:class:`VenueLoad`: the valid venues, one :class:`Problem` per finding, a summary.
"""

from venues.errors import VenueError, VenueFileError
from venues.geojson import to_feature_collection, venue_to_feature
from venues.limits import VenueLimits
from venues.model import DEFAULT_DWELL_S, Venue, VenueKind
from venues.problems import FILE_LEVEL, Code, Problem, Severity
from venues.read import load_venues
from venues.result import LoadSummary, VenueLoad
from venues.validate import parse_feature_collection

__all__ = [
    "DEFAULT_DWELL_S",
    "FILE_LEVEL",
    "Code",
    "LoadSummary",
    "Problem",
    "Severity",
    "Venue",
    "VenueError",
    "VenueFileError",
    "VenueKind",
    "VenueLimits",
    "VenueLoad",
    "load_venues",
    "parse_feature_collection",
    "to_feature_collection",
    "venue_to_feature",
]
