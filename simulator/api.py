"""The headless entry points: the CLI, the TUI, notebooks and benchmarks all call these.

run(scenario, seed=...)                      one replication → Result (with its ledger)
run_many(scenario, reps=..., executor=...)   replications → Ensemble (median, P10–P90, …)
sweep(path, {"key": values}, reps=...)       a grid of variants → SweepResult
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from simulator.engines.fast_engine import run_fast
from simulator.engines.simpy_engine import run_simpy
from simulator.result import Result
from simulator.runner.ensemble import Ensemble
from simulator.runner.executors import Executor
from simulator.runner.grid import Value
from simulator.runner.replications import ProgressCallback, assemble, ensemble_jobs, run_jobs
from simulator.runner.sweep import SweepResult, grid_points, sweep_axes
from simulator.scenario import Scenario, load_scenario
from simulator.scenario.models import EngineName

Engine = EngineName


def _resolve(scenario: Scenario | str | Path, months: int | None, engine: Engine | None = None) -> Scenario:
    overrides: dict[str, Any] = {}
    if months is not None:
        overrides["simulation.months"] = months
    if engine is not None:
        overrides["simulation.engine"] = engine
    if not isinstance(scenario, Scenario):
        return load_scenario(scenario, overrides or None)
    if not overrides:
        return scenario
    simulation = {**scenario.simulation.model_dump(), **{k.split(".")[1]: v for k, v in overrides.items()}}
    return scenario.model_validate({**scenario.model_dump(), "simulation": simulation})


def run(
    scenario: Scenario | str | Path,
    seed: int | None = None,
    months: int | None = None,
    events: IO[str] | None = None,
    on_progress: Callable[[float], None] | None = None,
    engine: Engine | None = None,
) -> Result:
    """Simulate one replication of `scenario` (a Scenario or a path to a scenario file).

    `seed` and `months` override the scenario's simulation.seed and simulation.months;
    `events`, if given, receives a CSV log of every event for audit. `on_progress`, if given,
    is called with the share of the horizon simulated after each month; an exception it
    raises stops the run (how an interactive caller cancels a stale run). `engine` overrides
    the scenario's simulation.engine ("fast" or "simpy"); the event log needs "simpy".
    """
    scenario = _resolve(scenario, months, engine)
    seed = scenario.simulation.seed if seed is None else seed
    if scenario.simulation.engine == "simpy":
        ledger = run_simpy(scenario, seed=seed, events=events, on_progress=on_progress)
    elif events is not None:
        raise ValueError("an event log is written by the SimPy engine only: use engine='simpy'")
    else:
        ledger = run_fast(scenario, seed=seed, on_progress=on_progress)
    return Result(scenario=scenario, seed=seed, ledger=ledger)


def run_many(
    scenario: Scenario | str | Path,
    reps: int = 100,
    seed: int | None = None,
    months: int | None = None,
    executor: Executor | None = None,
    on_progress: ProgressCallback | None = None,
    engine: Engine | None = None,
) -> Ensemble:
    """Run `reps` replications, seeds spawned from `seed` (default: the scenario's seed).

    Runs in this process unless an `executor` is given (`LocalExecutor(workers)` or
    `DaskExecutor(address)` from `simulator.runner.executors`). Raises ReplicationError if a
    replication fails. `engine` overrides the scenario's simulation.engine.
    """
    scenario = _resolve(scenario, months, engine)
    if seed is not None:
        scenario = scenario.model_copy(update={"simulation": scenario.simulation.model_copy(update={"seed": seed})})
    outcomes = run_jobs(ensemble_jobs(scenario, reps), executor, on_progress)
    return assemble(scenario, outcomes)


def sweep(
    path: str | Path,
    axes: Mapping[str, Sequence[Value] | str] | None = None,
    reps: int = 20,
    overrides: dict[str, Any] | None = None,
    executor: Executor | None = None,
    on_progress: ProgressCallback | None = None,
) -> SweepResult:
    """Run `reps` replications at every point of a grid over the scenario file `path`.

    `axes` maps dotted keys to lists of values or 'start:stop:step' specs; it adds to (and
    replaces keys of) the file's own [sweep] table. Every point is validated before anything
    runs, and all points share replication seeds (common random numbers).
    """
    path = Path(path)
    points = grid_points(path, sweep_axes(path, axes), overrides)
    jobs = [job for point in points for job in ensemble_jobs(point.scenario, reps)]
    outcomes = run_jobs(jobs, executor, on_progress)
    ensembles = tuple(assemble(p.scenario, outcomes[k * reps : (k + 1) * reps]) for k, p in enumerate(points))
    return SweepResult(sweep_axes(path, axes), tuple(points), ensembles)
