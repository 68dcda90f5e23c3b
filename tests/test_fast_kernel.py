"""Parts of the fast engine's compiled kernel checked directly against numpy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from simulator.engines import fast_kernel as kernel
from simulator.engines.fast_engine import Draws
from simulator.engines.sampling import RandomStreams
from simulator.scenario.loading import load_scenario


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


def test_rows_of_draws_start_small_double_at_each_top_up_and_lose_no_number() -> None:
    scenario = load_scenario(Path(__file__).parent.parent / "scenarios" / "baseline.toml")
    segments = len(scenario.segments)
    draws = Draws(scenario, RandomStreams(5), width=64, first=8)
    state = kernel.new_state(36.0, 64, segments)
    fields = dict(zip(kernel.STATE_FIELDS, kernel.arrays(state), strict=True))
    dc, dn = fields["dc"], fields["dn"]
    row = kernel.D_ARRIVAL_EXP
    assert kernel.DRAW_ROWS[row] == ("arrivals", "exponential")
    taken: list[float] = []
    sizes = []
    for used in (8, 5, 16, 32, 64, 64):  # how many of the row's numbers the "kernel" takes
        draws.refill(state, segments)
        dr = kernel.arrays(state)[kernel.STATE_FIELDS.index("dr")]
        sizes.append(int(dn[row]))
        taken += list(dr[row, dc[row] : min(dc[row] + used, dn[row])])
        dc[:] = np.minimum(dc + used, dn)
    # Sizes 8, 16, 32, 64, then the width: topped up only when under half the next size left.
    assert sizes == [8, 16, 32, 64, 64, 64]
    # The numbers taken are the stream's own sequence: none lost or repeated across top-ups,
    # and drawing into the row gives what drawing a new array would.
    expected = RandomStreams(5)["arrivals"].standard_exponential(len(taken))
    np.testing.assert_array_equal(taken, expected)
