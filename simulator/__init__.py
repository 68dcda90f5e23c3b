"""plgsim's headless core: scenarios in, a discrete-event simulation, metrics out.

Never imports a terminal UI library; see tests/test_import_hygiene.py.
"""

from simulator.api import run, run_many, sweep
from simulator.engines.simpy_engine import SimulationLimitError
from simulator.result import Result
from simulator.runner.ensemble import Ensemble
from simulator.runner.executors import DaskExecutor, LocalExecutor
from simulator.runner.replications import ReplicationError
from simulator.runner.stats import parse_target
from simulator.runner.sweep import SweepResult
from simulator.scenario import Scenario, ScenarioError, load_scenario

__all__ = [
    "DaskExecutor",
    "Ensemble",
    "LocalExecutor",
    "ReplicationError",
    "Result",
    "Scenario",
    "ScenarioError",
    "SimulationLimitError",
    "SweepResult",
    "load_scenario",
    "parse_target",
    "run",
    "run_many",
    "sweep",
]
__version__ = "0.1.0"
