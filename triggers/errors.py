"""The triggers layer's exception tree; the server translates these at its boundary."""


class TriggerError(ValueError):
    """A presence or decision request the core cannot honour."""
