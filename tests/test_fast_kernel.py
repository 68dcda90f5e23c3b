"""Parts of the fast engine's compiled kernel checked directly against numpy."""

from __future__ import annotations

import numpy as np
import pytest

from simulator.engines import fast_kernel as kernel


def _bucket_times(kind: str, n: int, bucket: int, rng: np.random.Generator) -> np.ndarray:
    width = 1.0 / kernel.BUCKETS_PER_MONTH
    start = bucket * width
    if kind == "spread":
        return start + rng.random(n) * width
    if kind == "few distinct":  # many exact ties, as at renewals and zero-length delays
        return start + rng.integers(0, 5, n) * width / 8
    # Bunched into one slice of the counting sort and decreasing: the insertion pass would
    # take n² moves, so the kernel falls back to a merge sort.
    return start + width / 2 - np.arange(n) * 1e-12


@pytest.mark.parametrize("kind", ["spread", "few distinct", "bunched, decreasing"])
@pytest.mark.parametrize("n", [0, 1, 7, 500])
def test_a_bucket_is_ordered_by_time_then_by_scheduling_order(kind: str, n: int) -> None:
    rng = np.random.default_rng(n)
    bucket = 40
    t = _bucket_times(kind, n, bucket, rng)
    assert np.all((t * kernel.BUCKETS_PER_MONTH).astype(np.int64) == bucket)
    # Events arrive in scheduling order, so their positions are the tie-breaker.
    expected = np.lexsort((np.arange(n), t))
    np.testing.assert_array_equal(kernel._time_order(t, bucket), expected)
