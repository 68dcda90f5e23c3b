"""The one headless entry point: the CLI, batch runs, the TUI and benchmarks all call `run`."""

from __future__ import annotations

from pathlib import Path
from typing import IO

from simulator.engines.simpy_engine import run_simpy
from simulator.result import Result
from simulator.scenario import Scenario, load_scenario


def run(
    scenario: Scenario | str | Path,
    seed: int | None = None,
    months: int | None = None,
    events: IO[str] | None = None,
) -> Result:
    """Simulate one replication of `scenario` (a Scenario or a path to a scenario file).

    `seed` and `months` override the scenario's simulation.seed and simulation.months;
    `events`, if given, receives a CSV log of every event for audit.
    """
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    if months is not None:
        scenario = scenario.model_validate(
            {**scenario.model_dump(), "simulation": {**scenario.simulation.model_dump(), "months": months}}
        )
    seed = scenario.simulation.seed if seed is None else seed
    ledger = run_simpy(scenario, seed=seed, events=events)
    return Result(scenario=scenario, seed=seed, ledger=ledger)
