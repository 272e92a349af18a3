"""The venues layer's exception tree; the server translates these at its boundary."""


class VenueError(ValueError):
    """A venue or venue file that cannot be used."""
