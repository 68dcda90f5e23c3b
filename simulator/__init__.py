"""plgsim's headless core: scenarios in, a discrete-event simulation, metrics out.

Never imports a terminal UI library; see tests/test_import_hygiene.py.
"""

from simulator.api import run
from simulator.engines.simpy_engine import SimulationLimitError
from simulator.result import Result
from simulator.scenario import Scenario, ScenarioError, load_scenario

__all__ = ["Result", "Scenario", "ScenarioError", "SimulationLimitError", "load_scenario", "run"]
__version__ = "0.1.0"
