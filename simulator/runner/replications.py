"""Running many replications: jobs out to an executor, outcomes back in job order."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from simulator.runner.digest import RunDigest, RunFailure
from simulator.runner.ensemble import Ensemble
from simulator.runner.executors import Executor, Job, LocalExecutor, Outcome
from simulator.runner.seeds import replication_seeds
from simulator.scenario.models import Scenario


@dataclass(frozen=True)
class Progress:
    """How far a piece of work has got: replications done of total and, in a batch, items."""

    done: int
    total: int
    items_done: int = 0
    items_total: int = 0
    message: str = ""


ProgressCallback = Callable[[Progress], None]


class ReplicationError(Exception):
    """A replication failed; `failure` says which seed and why."""

    def __init__(self, scenario: str, failure: RunFailure) -> None:
        super().__init__(f"{scenario}: replication with seed {failure.seed} failed: {failure.message}")
        self.failure = failure


def run_jobs(
    jobs: Sequence[Job], executor: Executor | None = None, on_progress: ProgressCallback | None = None
) -> list[Outcome]:
    """Run `jobs` (on `executor`, default: this process) and return their outcomes in job order."""
    own = executor is None
    runner: Executor = LocalExecutor(1) if executor is None else executor
    outcomes: list[Outcome | None] = [None] * len(jobs)
    try:
        for done, (i, outcome) in enumerate(runner.run(jobs), start=1):
            outcomes[i] = outcome
            if on_progress is not None:
                on_progress(Progress(done, len(jobs)))
    finally:
        if own:
            runner.close()
    assert all(o is not None for o in outcomes), "an executor lost a job"
    return outcomes  # type: ignore[return-value]


def ensemble_jobs(scenario: Scenario, reps: int) -> list[Job]:
    """The jobs of `reps` replications of `scenario`, seeds spawned from its seed."""
    return [Job(scenario, seed) for seed in replication_seeds(scenario.simulation.seed, reps)]


def assemble(scenario: Scenario, outcomes: Sequence[Outcome]) -> Ensemble:
    """The ensemble of a scenario's outcomes; raises ReplicationError on the first failure."""
    runs: list[RunDigest] = []
    for outcome in outcomes:
        if isinstance(outcome, RunFailure):
            raise ReplicationError(scenario.name, outcome)
        runs.append(outcome)
    return Ensemble(scenario=scenario, seed=scenario.simulation.seed, runs=tuple(runs))
