"""Random streams and the distributions both engines sample from.

One `numpy.random.Generator` per kind of decision, all derived from the scenario seed with
`SeedSequence`. A variant that changes one parameter therefore keeps the draws of every
other kind of decision (common random numbers), so scenario differences are signal.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from simulator.scenario.models import DAYS_PER_MONTH, LogNormalDays

STREAM_NAMES = (
    "arrivals",
    "channel",
    "segment",
    "activation",
    "account_profile",
    "invites",
    "acceptance",
    "free_lifetime",
    "conversion",
    "paid_lifetime",
    "expansion",
    "price_response",
)
"""Decision kinds, each with its own stream. Append only: reordering changes every result."""


class RandomStreams:
    """Named, independent generators derived from one seed."""

    def __init__(self, seed: int | np.random.SeedSequence) -> None:
        root = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
        children = root.spawn(len(STREAM_NAMES))
        self._generators = {
            name: np.random.Generator(np.random.PCG64(child))
            for name, child in zip(STREAM_NAMES, children, strict=True)
        }

    def __getitem__(self, name: str) -> np.random.Generator:
        return self._generators[name]


def buffered(draw_block: Callable[[int], NDArray[Any]], block: int = 4096) -> Callable[[], Any]:
    """Draws of one distribution served from blocks: `buffered(rng.random)()` is one uniform.

    NOTE: for performance reasons. A scalar numpy draw costs about a microsecond of call
    overhead, and the SimPy engine takes several per user, so it reads from refilled blocks
    (each block from its end). The draws come through `itertools.chain`, whose `__next__` runs
    in C until a block runs out: 52 ns a draw, against 70 ns through a generator's `__next__`
    and 63 ns for a method that pops a list.
    """

    def blocks() -> Iterator[Iterator[Any]]:
        while True:
            yield reversed(draw_block(block).tolist())

    return itertools.chain.from_iterable(blocks()).__next__


@dataclass(frozen=True)
class LogNormalMonths:
    """A lognormal duration given in days, sampled in months."""

    mu: float  # log of the median in months
    sigma: float

    @classmethod
    def from_days(cls, spec: LogNormalDays) -> LogNormalMonths:
        """Convert a scenario's (median days, sigma) to months."""
        median = spec.median_days / DAYS_PER_MONTH
        return cls(mu=math.log(median) if median > 0 else -math.inf, sigma=spec.sigma)

    def of_normal(self, z: float) -> float:
        """The duration in months at standard normal deviate `z` (0 when the median is 0)."""
        if self.mu == -math.inf:
            return 0.0
        return math.exp(self.mu + self.sigma * z)


def negative_binomial_draws(rng: np.random.Generator, mean: float, dispersion: float) -> Callable[[], Any]:
    """Counts with the given mean and shape k (Gamma–Poisson mixture; variance mean + mean²/k),
    one per call, drawn in blocks (see `buffered`)."""
    if mean <= 0:
        return lambda: 0
    return buffered(lambda n: rng.poisson(rng.gamma(dispersion, mean / dispersion, n)))


def periods_survived(rng: np.random.Generator, monthly_churn: float, period_months: int) -> int:
    """Billing periods an account pays for before it churns at a renewal.

    A monthly churn probability θ becomes 1 − (1 − θ)^period per renewal for longer periods,
    so an annual contract has the same expected survival but can only end at a renewal.
    """
    per_period = 1.0 - (1.0 - monthly_churn) ** period_months
    if per_period <= 0.0:
        return 2**31
    return int(rng.geometric(per_period))
