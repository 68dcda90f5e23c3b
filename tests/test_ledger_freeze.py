"""The month-end matrices and the record order of `freeze`, against direct definitions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from simulator.ledger import _month_end_values, _stable_order

DATA = Path(__file__).parent / "data"
SCENARIOS = Path(__file__).parent.parent / "scenarios"


def _month_ends_by_definition(
    rows: NDArray[Any], t: NDArray[Any], values: NDArray[Any], n_rows: int, months: int
) -> NDArray[np.int64]:
    """Each row's value at each month end: the value of its last record before the end of that
    month, 0 before its first."""
    out = np.zeros((n_rows, months), dtype=np.int64)
    for row, time, value in zip(rows.tolist(), t.tolist(), values.tolist(), strict=True):
        if time < months:
            out[row, int(np.floor(time)) :] = value
    return out


def _records(seed: int, n_rows: int, months: int, n: int) -> tuple[NDArray[Any], NDArray[Any], NDArray[Any]]:
    """Records by row, then time: several per (row, month), ties in time, some at a month's
    start, some beyond the horizon, some rows without any."""
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.integers(0, n_rows, n))
    t = rng.integers(0, months + 1, n) + rng.choice([0.0, 0.25, 0.5, 0.999], n)
    t = np.concatenate([np.sort(t[rows == r]) for r in range(n_rows)])
    return rows, t, rng.integers(-3, 4, n)


@pytest.mark.parametrize("seed", range(5))
def test_month_end_values_match_the_definition(seed: int) -> None:
    n_rows, months = 40, 7
    rows, t, values = _records(seed, n_rows, months, 300)
    expected = _month_ends_by_definition(rows, t, values, n_rows, months)
    # By row, or in time order (rows interleaved): the same matrix.
    by_time = np.argsort(t, kind="stable")
    for order in (np.arange(len(rows)), by_time):
        wide = _month_end_values(rows[order], t[order], values[order], n_rows, months, np.int64)
        narrow = _month_end_values(rows[order], t[order], values[order], n_rows, months, np.int8)
        assert wide.dtype == np.int64 and narrow.dtype == np.int8
        assert wide.flags.c_contiguous and narrow.flags.c_contiguous
        np.testing.assert_array_equal(wide, expected)
        np.testing.assert_array_equal(narrow, expected)


def test_month_end_values_without_records() -> None:
    rows, t = np.zeros(0, dtype=np.int64), np.zeros(0)
    assert _month_end_values(rows, t, rows, 3, 4, np.int64).tolist() == [[0] * 4] * 3
    assert _month_end_values(rows, t, rows, 0, 4, np.int8).shape == (0, 4)


def test_month_end_values_refuse_rows_out_of_range() -> None:
    with pytest.raises(IndexError):
        _month_end_values(np.array([3]), np.array([0.5]), np.array([1]), 3, 4, np.int64)


@pytest.mark.parametrize("n", [0, 1, 1000])
def test_stable_order_is_a_stable_argsort(n: int) -> None:
    ids = np.random.default_rng(n).integers(0, 50, n)
    order, sorted_ids = _stable_order(ids)
    np.testing.assert_array_equal(order, np.argsort(ids, kind="stable"))
    np.testing.assert_array_equal(sorted_ids, np.sort(ids))


@pytest.mark.parametrize("engine", ["fast", "simpy"])
def test_a_ledgers_arrays_are_read_only(engine: str) -> None:
    # Metrics keep tables derived from a ledger (Ledger.memo): changing one of its arrays in
    # place would leave them stale, so no array of a ledger can be changed.
    import dataclasses

    import simulator
    from simulator.ledger import Ledger

    tiny = DATA / "tiny.toml"
    ledger = simulator.run(tiny, months=3, engine=engine).ledger
    arrays = [f.name for f in dataclasses.fields(Ledger) if isinstance(getattr(ledger, f.name), np.ndarray)]
    assert len(arrays) > 15
    for name in arrays:
        with pytest.raises(ValueError, match="read-only"):
            getattr(ledger, name)[...] = 0


def _ledger_fields(ledger: Any) -> dict[str, Any]:
    import dataclasses

    return {f.name: getattr(ledger, f.name) for f in dataclasses.fields(ledger)}


def test_freeze_fills_the_state_matrix_beside_with_the_same_result(monkeypatch: pytest.MonkeyPatch) -> None:
    # Large runs fill the account states' matrix on a thread of its own (where there are two
    # cores); the ledger must be the same either way, field for field.
    import simulator
    import simulator.ledger as ledger_module

    captured: dict[str, Any] = {}
    freeze = ledger_module.freeze

    def capture(**records: Any) -> Any:
        captured.update(records)
        return freeze(**records)

    monkeypatch.setattr("simulator.engines.fast_engine.freeze", capture)
    simulator.run(DATA / "tiny.toml", months=12, engine="fast")
    assert len(captured["changes"].t) > 100

    threads_started: list[str] = []
    beside = ledger_module._Beside

    class CountedBeside(beside):  # type: ignore[misc, valid-type]
        def start(self) -> None:
            threads_started.append(self.name)
            super().start()

    monkeypatch.setattr(ledger_module, "_Beside", CountedBeside)
    monkeypatch.setattr(ledger_module, "cores_for_this_process", lambda: 2)
    monkeypatch.setattr(ledger_module, "SIDE_THREAD_RECORDS", 0)
    beside_ledger = freeze(**captured)
    assert threads_started == ["ledger-beside"]
    monkeypatch.setattr(ledger_module, "SIDE_THREAD_RECORDS", 10**12)
    alone = freeze(**captured)
    assert threads_started == ["ledger-beside"]  # no second thread

    for name, value in _ledger_fields(alone).items():
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(getattr(beside_ledger, name), value, err_msg=name)
        else:
            assert getattr(beside_ledger, name) == value, name


def test_an_error_on_the_side_thread_is_raised_in_the_caller() -> None:
    from simulator.ledger import _Beside

    def fails() -> None:
        raise ValueError("from the side thread")

    side = _Beside(fails)
    with pytest.raises(ValueError, match="from the side thread"):
        side.result()
    assert not side.is_alive()
    assert _Beside(lambda x: x + 1, 41).result() == 42


def _bits(value: Any) -> Any:
    """A field as bytes (arrays: bit for bit, so that -0.0 and NaN payloads count too)."""
    return (value.dtype.str, value.shape, value.tobytes()) if isinstance(value, np.ndarray) else value


def _fast_engine_records(path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """What the fast engine hands to freeze for a run of `path`."""
    import simulator
    import simulator.ledger as ledger_module

    captured: dict[str, Any] = {}

    def capture(**records: Any) -> Any:
        captured.update(records)
        return ledger_module.freeze(**records)

    with monkeypatch.context() as patch:
        patch.setattr("simulator.engines.fast_engine.freeze", capture)
        simulator.run(path, seed=3, engine="fast")
    return captured


def _moving_money(changes: Any) -> NDArray[np.int64]:
    """Indices of the records that move money or seats, by definition: nonzero MRR or seats, or
    the next record of an account whose last record had them."""
    nonzero = (changes.mrr_cents != 0) | (changes.seats != 0)
    after_nonzero = np.zeros_like(nonzero)
    last_nonzero: dict[int, bool] = {}
    for i, account in enumerate(changes.account.tolist()):
        after_nonzero[i] = last_nonzero.get(account, False)
        last_nonzero[account] = bool(nonzero[i])
    return np.flatnonzero(nonzero | after_nonzero)


@pytest.mark.parametrize(
    "name",
    [*sorted(p.name for p in SCENARIOS.glob("*.toml")), "equivalence/deterministic.toml", "equivalence/teeth.toml"],
)
def test_the_fast_engines_money_changes_leave_the_ledger_as_it_was(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # The fast engine names the records that move money or seats (money_changes), so that freeze
    # need not find them among all: the ledger must be the same, bit for bit, as without.
    from simulator.ledger import freeze

    path = SCENARIOS / name if "/" not in name else DATA / name
    records = _fast_engine_records(path, monkeypatch)
    money = records["money_changes"]
    assert money is not None and len(money) > 0  # every one of these scenarios has paying accounts
    assert np.all(money[1:] > money[:-1])  # increasing: the records' order
    missing = np.setdiff1d(_moving_money(records["changes"]), money)
    assert missing.size == 0, f"records that move money but are not named: {missing[:5]}"

    named = freeze(**records)
    found = freeze(**{**records, "money_changes": None})
    for field, value in _ledger_fields(found).items():
        assert _bits(getattr(named, field)) == _bits(value), field


def test_freeze_uses_the_money_changes_it_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    # The comparison above can fail: leaving out one record that moves money changes the ledger.
    from simulator.ledger import freeze

    records = _fast_engine_records(SCENARIOS / "baseline.toml", monkeypatch)
    money = records["money_changes"]
    assert 0 < len(money) < len(records["changes"].t) // 10  # a few records of many
    paying = np.flatnonzero(records["changes"].mrr_cents[money] > 0)
    short = np.delete(money, paying[len(paying) // 2])
    with_all, without_one = freeze(**records), freeze(**{**records, "money_changes": short})
    assert not np.array_equal(without_one.cohort_revenue, with_all.cohort_revenue)


def test_money_changes_are_ignored_when_freeze_reorders_the_records() -> None:
    # Indices name records as given: records out of time order are sorted first, and freeze then
    # finds the money records itself.
    from simulator.ledger import AccountChanges, freeze

    def ledger(money_changes: Any) -> Any:
        users = np.arange(2)
        changes = AccountChanges(
            account=np.array([1, 0, 0, 1]),
            t=np.array([1.5, 0.0, 0.5, 0.2]),  # out of order
            state=np.array([2, 0, 2, 0]),
            mrr_cents=np.array([700, 0, 500, 0]),
            seats=np.array([1, 0, 1, 0]),
        )
        return freeze(
            months=3,
            currency="USD",
            gross_margin=0.8,
            cost_to_serve_per_seat=0.0,
            segment_names=("all",),
            user_signup_t=np.array([0.0, 0.2]),
            user_channel=np.zeros(2, dtype=np.int8),
            user_segment=np.zeros(2, dtype=np.int16),
            user_account=users,
            user_inviter=np.full(2, -1),
            user_activated_t=np.array([0.0, 0.2]),
            user_invites_sent=np.zeros(2, dtype=np.int32),
            user_invites_accepted=np.zeros(2, dtype=np.int32),
            account_owner=users,
            account_first_paid_t=np.array([0.5, 1.5]),
            account_trial_end_t=np.full(2, np.nan),
            account_trial_converted=np.zeros(2, dtype=bool),
            account_end_t=np.full(2, np.inf),
            changes=changes,
            spend=np.zeros((3, 3)),
            money_changes=money_changes,
        )

    # In the given order, records 0 and 2 move money; named so, but sorted they are 3 and 2.
    named, found = ledger(np.array([0, 2])), ledger(None)
    for field, value in _ledger_fields(found).items():
        assert _bits(getattr(named, field)) == _bits(value), field
    assert found.paid_mrr_cents.tolist() == [[500, 500, 500], [0, 700, 700]]  # at each month end
