"""What one replication sends back from a worker: its KPIs and monthly series, not its ledger.

A ledger holds per-user arrays (megabytes for a large run); a digest is a few kilobytes, so
thousands of replications travel between processes and machines cheaply.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from simulator.result import Result


@dataclass(frozen=True)
class RunDigest:
    """The reportable outcome of one replication."""

    seed: int
    simulated_users: int
    kpis: dict[str, float]
    """Summary KPIs, then checkpoint values keyed 'users@m12', 'mrr@horizon', …"""
    monthly: dict[str, NDArray[np.float64]]

    @classmethod
    def of(cls, result: Result) -> RunDigest:
        monthly = {k: np.asarray(v, dtype=float) for k, v in result.monthly.items() if k != "month"}
        return cls(seed=result.seed, simulated_users=result.ledger.users, kpis=dict(result.kpis), monthly=monthly)


@dataclass(frozen=True)
class RunFailure:
    """A replication that raised: one line for people, the traceback for the manifest."""

    seed: int
    message: str
    detail: str = ""
    bad_input: bool = False
