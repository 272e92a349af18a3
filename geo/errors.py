"""The geo layer's exception tree; the server translates these at its boundary."""


class GeoError(ValueError):
    """A coordinate, geometry or index request the geo layer cannot honour."""
