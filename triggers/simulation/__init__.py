"""Scenario simulations (issue 5): the service's engine driven by a virtual clock.

Pure: the scenario arrives validated and with its venues and recorded pings loaded
(``server/cli/scenario_files.py`` reads the files); :func:`simulate` runs it through
``process_batch`` / ``advance`` / ``decide`` and returns a :class:`SimulationResult`;
:func:`check` evaluates the scenario's expectations against it.
"""

from triggers.simulation.backtest import BacktestTally
from triggers.simulation.engine import dwell_thresholds, simulate
from triggers.simulation.errors import SimulationError
from triggers.simulation.expect import Outcome as ExpectOutcome
from triggers.simulation.expect import check
from triggers.simulation.result import Delivery, SimulationResult, iso
from triggers.simulation.routes import DEFAULT_ENTRANCE_M, Leg, parse_leg
from triggers.simulation.scenario import Expect, Scenario, ScenarioSpec, build
from triggers.simulation.stream import WINDOW_S

__all__ = [
    "DEFAULT_ENTRANCE_M",
    "WINDOW_S",
    "BacktestTally",
    "Delivery",
    "Expect",
    "ExpectOutcome",
    "Leg",
    "Scenario",
    "ScenarioSpec",
    "SimulationError",
    "SimulationResult",
    "build",
    "check",
    "dwell_thresholds",
    "iso",
    "parse_leg",
    "simulate",
]
