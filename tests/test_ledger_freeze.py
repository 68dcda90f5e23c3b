"""The month-end matrices and the record order of `freeze`, against direct definitions."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from simulator.ledger import _month_end_values, _stable_order


def _month_ends_by_definition(
    rows: NDArray[Any], bins: NDArray[Any], values: NDArray[Any], n_rows: int, months: int
) -> NDArray[np.int64]:
    """Each row's value at each month end: the value of its last record in that month or before."""
    out = np.zeros((n_rows, months), dtype=np.int64)
    for row, month, value in zip(rows.tolist(), bins.tolist(), values.tolist(), strict=True):
        if month < months:
            out[row, month:] = value
    return out


@pytest.mark.parametrize("seed", range(5))
def test_month_end_values_match_the_definition(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_rows, months, n = 40, 7, 300
    # Records sorted by row and time; several per (row, month), some beyond the horizon, some rows
    # without any record.
    rows = np.sort(rng.integers(0, n_rows, n))
    bins = np.concatenate([np.sort(rng.integers(0, months + 1, (rows == r).sum())) for r in range(n_rows)])
    values = rng.integers(-3, 4, n)
    expected = _month_ends_by_definition(rows, bins, values, n_rows, months)
    wide = _month_end_values(rows, bins.astype(np.int8), values, n_rows, months)
    narrow = _month_end_values(rows, bins.astype(np.int8), values.astype(np.int8), n_rows, months, np.int8)
    assert wide.dtype == np.int64 and narrow.dtype == np.int8
    assert wide.flags.c_contiguous and narrow.flags.c_contiguous
    np.testing.assert_array_equal(wide, expected)
    np.testing.assert_array_equal(narrow, expected)


def test_month_end_values_without_records() -> None:
    empty = np.zeros(0, dtype=np.int64)
    assert _month_end_values(empty, empty.astype(np.int8), empty, 3, 4).tolist() == [[0] * 4] * 3
    assert _month_end_values(empty, empty.astype(np.int8), empty, 0, 4).shape == (0, 4)


@pytest.mark.parametrize("n", [0, 1, 1000])
def test_stable_order_is_a_stable_argsort(n: int) -> None:
    ids = np.random.default_rng(n).integers(0, 50, n)
    order, sorted_ids = _stable_order(ids)
    np.testing.assert_array_equal(order, np.argsort(ids, kind="stable"))
    np.testing.assert_array_equal(sorted_ids, np.sort(ids))
