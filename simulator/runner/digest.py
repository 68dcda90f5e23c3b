"""What one replication sends back from a worker: its KPIs and monthly series, not its ledger.

A ledger holds per-user arrays (megabytes for a large run); a digest is a few kilobytes, so
thousands of replications travel between processes and machines cheaply.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from simulator import metrics
from simulator.result import Result


@dataclass(frozen=True)
class RunDigest:
    """The reportable outcome of one replication."""

    seed: int
    simulated_users: int
    kpis: dict[str, float]
    """Summary KPIs, then checkpoint values keyed 'users@m12', 'mrr@horizon', …"""
    monthly: dict[str, NDArray[np.float64]]
    tables: dict[str, NDArray[np.float64]]
    """Cohort × months-since-start retention tables: 'users', 'accounts', 'revenue'."""

    @classmethod
    def of(cls, result: Result) -> RunDigest:
        monthly = {k: np.asarray(v, dtype=float) for k, v in result.monthly.items() if k != "month"}
        accounts, revenue = metrics.account_retention(result.ledger)
        tables = {"users": metrics.user_retention(result.ledger), "accounts": accounts, "revenue": revenue}
        return cls(result.seed, result.ledger.users, dict(result.kpis), monthly, tables)


@dataclass(frozen=True)
class RunFailure:
    """A replication that raised: one line for people, the traceback for the manifest."""

    seed: int
    message: str
    detail: str = ""
    bad_input: bool = False
