"""Runs for the terminal UI: one scenario projected in a background thread, with progress and
cooperative cancellation. Always an Ensemble, so one replication and many share one display."""

from __future__ import annotations

from collections.abc import Callable

from simulator.api import run, run_many
from simulator.runner.digest import RunDigest
from simulator.runner.ensemble import Ensemble
from simulator.runner.executors import LocalExecutor
from simulator.scenario import Scenario
from simulator.scenario.models import EngineName


class Stale(Exception):
    """Raised from a progress callback to abandon a run whose inputs have changed."""


def project(
    scenario: Scenario,
    reps: int,
    on_progress: Callable[[float], None],
    workers: int | None = None,
    engine: EngineName | None = None,
) -> Ensemble:
    """One replication with the scenario seed (the same numbers `plgsim run` prints), or `reps`
    replications on a local process pool. `on_progress` gets the share done; it may raise
    `Stale` to stop the run. `engine` overrides the scenario's simulation.engine."""
    if reps == 1:
        result = run(scenario, on_progress=on_progress, engine=engine)
        return Ensemble(result.scenario, result.seed, (RunDigest.of(result),))
    with LocalExecutor(workers) as pool:
        return run_many(
            scenario, reps, executor=pool, on_progress=lambda p: on_progress(p.done / p.total), engine=engine
        )
