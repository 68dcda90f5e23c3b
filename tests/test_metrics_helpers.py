"""The helpers behind the month-end account metrics, against direct definitions."""

from __future__ import annotations

import numpy as np

from simulator.ledger import AccountState
from simulator.metrics import _count_user_months, _paying_cells


def test_paying_cells_over_several_blocks_of_accounts() -> None:
    state = np.random.default_rng(1).integers(0, len(AccountState), (70_000, 5)).astype(np.int8)
    np.testing.assert_array_equal(_paying_cells(state), np.flatnonzero(state == AccountState.PAYING))
    assert _paying_cells(state[:0]).tolist() == []


def test_user_months_counted_by_the_state_of_their_account() -> None:
    rng = np.random.default_rng(2)
    accounts, users, months = 30, 80, 6
    state = rng.integers(0, len(AccountState), (accounts, months)).astype(np.int8)
    start = rng.integers(0, months, users)
    stop = np.minimum(start + rng.integers(0, months, users), months)
    account = rng.integers(0, accounts, users)
    counts = np.zeros((3, months), dtype=np.int64)
    _count_user_months(start, stop, account, state, counts)
    expected = np.zeros((3, months), dtype=np.int64)
    for user in range(users):
        for month in range(start[user], stop[user]):
            if state[account[user], month] < 3:
                expected[state[account[user], month], month] += 1
    np.testing.assert_array_equal(counts, expected)
