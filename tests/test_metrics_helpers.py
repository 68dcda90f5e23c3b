"""The helpers behind the month-end account metrics, against direct definitions."""

from __future__ import annotations

import numpy as np

from simulator.ledger import AccountState
from simulator.metrics import _paying_cells


def test_paying_cells_over_several_blocks_of_accounts() -> None:
    state = np.random.default_rng(1).integers(0, len(AccountState), (70_000, 5)).astype(np.int8)
    np.testing.assert_array_equal(_paying_cells(state), np.flatnonzero(state == AccountState.PAYING))
    assert _paying_cells(state[:0]).tolist() == []
