"""The SimPy engine's block-drawn distributions against their closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest

from simulator.engines.sampling import buffered, negative_binomial_draws

N = 200_000
Z = 5.0  # standard errors allowed: a false alarm about once in 3.5 million


@pytest.mark.parametrize(("mean", "dispersion"), [(2.0, 0.5), (0.8, 3.0), (5.0, 50.0)])
def test_negative_binomial_mean_and_zeros(mean: float, dispersion: float) -> None:
    draw = negative_binomial_draws(np.random.default_rng(3), mean, dispersion)
    counts = np.array([draw() for _ in range(N)])
    variance = mean + mean**2 / dispersion
    assert abs(counts.mean() - mean) < Z * math.sqrt(variance / N)
    # The share of zeros pins the shape: (k / (k + mean))^k, not a Poisson's exp(-mean).
    p_zero = (dispersion / (dispersion + mean)) ** dispersion
    assert abs(np.mean(counts == 0) - p_zero) < Z * math.sqrt(p_zero * (1 - p_zero) / N)


def test_no_invites_without_a_mean() -> None:
    draw = negative_binomial_draws(np.random.default_rng(3), 0.0, 1.0)
    assert [draw() for _ in range(10)] == [0] * 10


def test_buffered_serves_every_draw_of_each_block_once() -> None:
    blocks = iter([np.array([1.0, 2.0, 3.0]), np.array([4.0, 5.0, 6.0])])
    draw = buffered(lambda n: next(blocks), block=3)
    assert [draw() for _ in range(6)] == [3.0, 2.0, 1.0, 6.0, 5.0, 4.0]
