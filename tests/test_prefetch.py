"""`prefetch` compiles into compiled code and changes nothing but timing."""

from __future__ import annotations

from typing import Any

import numpy as np

from simulator.engines.compiled import compiled
from simulator.engines.prefetch import prefetch


@compiled(cache=False, reference_counted=False)
def _sum_with_hints(rows: Any, order: Any) -> float:
    total = 0.0
    for k in range(order.shape[0]):
        if k + 4 < order.shape[0]:
            prefetch(rows, order[k + 4] * rows.shape[1])  # a row four steps ahead
        total += rows[order[k], 0] + rows[order[k], rows.shape[1] - 1]
    return total


def test_prefetching_rows_ahead_leaves_the_result_unchanged() -> None:
    rng = np.random.default_rng(0)
    rows = rng.random((10_000, 14))
    order = rng.permutation(10_000)
    expected = 0.0
    for k in order:  # the same additions in the same order
        expected += rows[k, 0] + rows[k, -1]
    assert _sum_with_hints(rows, order) == expected
