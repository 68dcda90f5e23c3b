"""Spread of a quantity across Monte Carlo replications, and the probability of a target.

Replications where a quantity is undefined (NaN: e.g. no CAC payback within the horizon)
are left out of its percentiles and mean; `n` says how many replications it rests on. A
target counts an undefined value as *not* met, so P(target) is never flattered by runs where
the quantity does not exist.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from simulator.suggest import did_you_mean

QUANTILES = {"p10": 0.10, "p50": 0.50, "p90": 0.90}
STATISTICS = ("p10", "p50", "p90", "mean", "stderr", "n")
"""The columns every spread is reported with, in order."""


@dataclass(frozen=True)
class Spread:
    """Median, P10–P90, mean and standard error of the mean of one quantity over replications."""

    p10: float
    p50: float
    p90: float
    mean: float
    stderr: float
    n: int

    def as_dict(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in STATISTICS}


def spread(values: ArrayLike) -> Spread:
    """The spread of `values` (one per replication); NaNs are left out.

    Percentiles use numpy's default (linear interpolation between order statistics); the
    standard error is the sample standard deviation (ddof=1) over √n, undefined for n < 2.
    """
    data = np.asarray(values, dtype=float)
    data = data[~np.isnan(data)]
    n = int(data.size)
    if n == 0:
        return Spread(math.nan, math.nan, math.nan, math.nan, math.nan, 0)
    p10, p50, p90 = np.quantile(data, list(QUANTILES.values()))
    stderr = float(np.std(data, ddof=1) / math.sqrt(n)) if n > 1 else math.nan
    return Spread(float(p10), float(p50), float(p90), float(np.mean(data)), stderr, n)


def spread_by_month(samples: NDArray[np.float64]) -> dict[str, NDArray[np.float64]]:
    """Each statistic of a (replications × months) array, month by month."""
    columns = [spread(samples[:, m]) for m in range(samples.shape[1])]
    return {name: np.array([getattr(c, name) for c in columns], dtype=float) for name in STATISTICS}


_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
}
_TARGET = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_@]*)\s*(>=|<=|>|<)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$")


class TargetError(ValueError):
    """A target expression that cannot be used; the message says why."""


@dataclass(frozen=True)
class Target:
    """A condition on one summary KPI, e.g. `nrr_12m>=1.10`."""

    key: str
    op: str
    threshold: float

    def __str__(self) -> str:
        return f"{self.key}{self.op}{self.threshold:.15g}"

    def met(self, values: ArrayLike) -> NDArray[np.bool_]:
        """Per replication: is the target met? Undefined values do not meet it."""
        data = np.asarray(values, dtype=float)
        compare: Callable[[Any, float], Any] = _OPERATORS[self.op]
        with np.errstate(invalid="ignore"):
            return np.asarray(compare(data, self.threshold), dtype=bool) & ~np.isnan(data)


@dataclass(frozen=True)
class TargetOutcome:
    """The share of replications meeting a target, with its binomial standard error."""

    target: Target
    probability: float
    stderr: float
    met: int
    n: int

    def as_dict(self) -> dict[str, float | int | str]:
        return {
            "target": str(self.target),
            "probability": self.probability,
            "stderr": self.stderr,
            "met": self.met,
            "n": self.n,
        }


def parse_target(text: str, known: Mapping[str, object] | None = None) -> Target:
    """Parse `KEY OP NUMBER` (OP one of >= <= > <). With `known`, the key must be one of its keys."""
    match = _TARGET.match(text)
    if match is None:
        raise TargetError(f"target {text!r}: write KEY>=NUMBER, KEY<=NUMBER, KEY>NUMBER or KEY<NUMBER")
    key, op, number = match.groups()
    if known is not None and key not in known:
        hint = did_you_mean(key, known) or f"; known: {', '.join(known)}"
        raise TargetError(f"target {text!r}: unknown KPI {key!r}{hint}")
    return Target(key, op, float(number))


def probability(target: Target, values: ArrayLike) -> TargetOutcome:
    """P(target met) over the replications in `values`, with stderr √(p(1−p)/n)."""
    met = target.met(values)
    n = int(met.size)
    hits = int(met.sum())
    if n == 0:
        return TargetOutcome(target, math.nan, math.nan, 0, 0)
    p = hits / n
    return TargetOutcome(target, p, math.sqrt(p * (1 - p) / n), hits, n)
