"""The simulation's error: what is wrong and where in the scenario (a YAML path)."""

from __future__ import annotations

from triggers.errors import TriggerError


class SimulationError(TriggerError):
    """A scenario the engine cannot run. ``path`` is the YAML path of the offending
    value (``trajectories[1].generate.route[2]``; empty for the whole scenario)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.message = message
