"""Seeds of Monte Carlo replications, spawned from the scenario seed with `SeedSequence`.

Replication i's seed depends only on the scenario seed and i, not on how many replications
are run, so 100 replications extend 10 without changing them. Each seed is an ordinary
integer: `plgsim run FILE --seed S` (or `simulator.run(scenario, seed=S)`) reproduces a
replication alone.
"""

from __future__ import annotations

import numpy as np


def replication_seeds(seed: int, reps: int) -> tuple[int, ...]:
    """The seeds of replications 0 … reps−1 of a scenario whose seed is `seed`.

    Each is drawn from its own spawned child sequence (63 bits, so it fits a signed 64-bit
    column in CSV, Parquet or pandas). The engine seeds its own named streams from it.
    """
    if reps < 1:
        raise ValueError("reps must be at least 1")
    children = np.random.SeedSequence(seed).spawn(reps)
    return tuple(int(child.generate_state(1, np.uint64)[0] >> np.uint64(1)) for child in children)
