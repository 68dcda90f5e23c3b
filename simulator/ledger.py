"""The ledger: the one place engines write to, and the contract with everything after them.

Engines call the recording methods of `LedgerWriter` as things happen (signups, activations,
invites, account state changes, spend). `LedgerWriter.close()` turns those records into a
frozen `Ledger` of numpy arrays: user and account tables, month-end account matrices and
accrued revenue by acquisition cohort. Metrics are pure functions of a `Ledger`.

Month m covers simulated time [m, m + 1); "the end of month m" is the state after every
change with time < m + 1. Money inside the ledger is integer cents, so that the MRR
waterfall identity holds exactly.
"""

from __future__ import annotations

import csv
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from functools import cached_property, partial
from typing import IO, Any

import numpy as np
from numba import njit
from numpy.typing import NDArray

from simulator.cores import cores_for_this_process


class Channel(IntEnum):
    """Where a user came from."""

    PAID = 0
    ORGANIC = 1
    WORD_OF_MOUTH = 2
    VIRAL = 3


class AccountState(IntEnum):
    """State of an account (and so of each of its users)."""

    FREE = 0
    TRIAL = 1
    PAYING = 2
    GONE = 3


class SpendKind(IntEnum):
    """Kinds of acquisition spend."""

    PAID_MEDIA = 0
    ONBOARDING = 1
    REFERRAL = 2


CHANNEL_NAMES = tuple(c.name.lower() for c in Channel)
STATE_NAMES = tuple(s.name.lower() for s in AccountState)

Floats = NDArray[np.float64]
Ints = NDArray[np.int64]


@dataclass(frozen=True)
class Ledger:
    """Everything a run produced, as arrays. Shapes: U users, A accounts, P accounts that ever
    paid, M months."""

    months: int
    currency: str
    gross_margin: float
    cost_to_serve_per_seat: float
    segment_names: tuple[str, ...]
    # users (U)
    user_signup_t: Floats
    user_channel: NDArray[np.int8]
    user_segment: NDArray[np.int16]
    user_account: Ints
    user_inviter: Ints  # -1 when not invited
    user_activated_t: Floats  # NaN when never activated within the horizon
    user_left_t: Floats  # inf while still active at the horizon
    user_invites_sent: NDArray[np.int32]
    user_invites_accepted: NDArray[np.int32]
    # accounts (A); the owner is the user who created it
    account_owner: Ints
    account_first_paid_t: Floats  # NaN if it never paid
    account_trial_end_t: Floats  # NaN if it had no trial or the trial had not ended
    account_trial_converted: NDArray[np.bool_]
    account_state: NDArray[np.int8]  # (A, M) state at each month end
    # accounts that ever paid (P); row p is account paid_account[p]
    paid_account: Ints
    paid_mrr_cents: Ints  # (P, M) MRR at each month end
    paid_seats: Ints  # (P, M) paid seats at each month end
    # accrued over each month, by acquisition cohort (owner's signup month) (M, M)
    cohort_revenue: Floats  # money
    cohort_seat_months: Floats
    spend: Floats  # (3, M) money by SpendKind

    @property
    def users(self) -> int:
        """Number of users who signed up within the horizon."""
        return len(self.user_signup_t)

    def __post_init__(self) -> None:
        # Metrics keep tables derived from these arrays (`memo`): the arrays must never change.
        for value in vars(self).values():
            if isinstance(value, np.ndarray):
                value.flags.writeable = False

    @cached_property
    def memo(self) -> dict[str, Any]:
        """Tables derived from this ledger, by name, kept by the functions that compute them (see
        `simulator.metrics`): a ledger's arrays never change after freeze, so the tables that many
        metrics share are computed once per ledger. Not a field: not compared, not part of a copy."""
        return {}


class LedgerWriter:
    """Collects what an engine records during a run; `close()` gives the frozen Ledger."""

    def __init__(
        self,
        months: int,
        segment_names: tuple[str, ...],
        currency: str = "USD",
        gross_margin: float = 1.0,
        cost_to_serve_per_seat: float = 0.0,
        events: IO[str] | None = None,
    ) -> None:
        self.months = months
        self.segment_names = segment_names
        self.currency = currency
        self.gross_margin = gross_margin
        self.cost_to_serve_per_seat = cost_to_serve_per_seat
        self._events = csv.writer(events) if events is not None else None
        if self._events is not None:
            self._events.writerow(["time_months", "event", "user", "account", "detail"])
        # NOTE: plain lists, appended in time order, are the cheapest record in CPython;
        # they become arrays once, in close().
        self._signup_t: list[float] = []
        self._channel: list[int] = []
        self._segment: list[int] = []
        self._account: list[int] = []
        self._inviter: list[int] = []
        self._activated_t: list[float] = []
        self._invites_sent: list[int] = []
        self._invites_accepted: list[int] = []
        self._owner: list[int] = []
        self._first_paid_t: list[float] = []
        self._trial_end_t: list[float] = []
        self._trial_converted: list[bool] = []
        self._end_t: list[float] = []
        self._change_account: list[int] = []
        self._change_t: list[float] = []
        self._change_state: list[int] = []
        self._change_mrr: list[int] = []
        self._change_seats: list[int] = []
        self._spend_t: list[float] = []
        self._spend_kind: list[int] = []
        self._spend_amount: list[float] = []

    def _log(self, t: float, event: str, user: int, account: int, detail: object = "") -> None:
        if self._events is not None:
            self._events.writerow([f"{t:.6f}", event, user, account, detail])

    # --- recording, called by engines -------------------------------------------------
    @property
    def next_user_id(self) -> int:
        """The id the next signup will get."""
        return len(self._signup_t)

    def new_account(self, t: float, owner: int, state: AccountState) -> int:
        """Open an account for user `owner` (who signs up at the same moment); returns its id."""
        account = len(self._owner)
        self._owner.append(owner)
        self._first_paid_t.append(math.nan)
        self._trial_end_t.append(math.nan)
        self._trial_converted.append(False)
        self._end_t.append(math.inf)
        self._record_change(account, t, state, 0, 0)
        return account

    def user_signed_up(self, t: float, channel: Channel, segment: int, account: int, inviter: int) -> int:
        """A person signs up into `account`; returns the user id."""
        user = len(self._signup_t)
        self._signup_t.append(t)
        self._channel.append(channel)
        self._segment.append(segment)
        self._account.append(account)
        self._inviter.append(inviter)
        self._activated_t.append(math.nan)
        self._invites_sent.append(0)
        self._invites_accepted.append(0)
        if self._events is not None:
            self._log(t, "signup", user, account, CHANNEL_NAMES[channel])
        return user

    def user_activated(self, t: float, user: int) -> None:
        """The user reached activation (first value)."""
        self._activated_t[user] = t
        self._log(t, "activation", user, self._account[user])

    def invite_sent(self, t: float, inviter: int, accepted: bool) -> None:
        """An invite went out; `accepted` if it brought a new user."""
        self._invites_sent[inviter] += 1
        if accepted:
            self._invites_accepted[inviter] += 1
        self._log(t, "invite", inviter, self._account[inviter], "accepted" if accepted else "ignored")

    def account_changed(self, t: float, account: int, state: AccountState, mrr_cents: int, seats: int) -> None:
        """The account's state, MRR (cents) or paid seats changed at time t."""
        if state == AccountState.PAYING and math.isnan(self._first_paid_t[account]):
            self._first_paid_t[account] = t
        if state == AccountState.GONE:
            self._end_t[account] = t
        self._record_change(account, t, state, mrr_cents, seats)
        # NOTE: for performance reasons. Checked here, not only in _log: the detail is
        # formatted before the call, on every change of every account.
        if self._events is not None:
            self._log(t, STATE_NAMES[state], self._owner[account], account, f"mrr_cents={mrr_cents} seats={seats}")

    def trial_ended(self, t: float, account: int, converted: bool) -> None:
        """A trial ended, converting to paid or not."""
        self._trial_end_t[account] = t
        self._trial_converted[account] = converted
        self._log(t, "trial_end", self._owner[account], account, "converted" if converted else "not converted")

    def spent(self, t: float, kind: SpendKind, amount: float) -> None:
        """Acquisition spend of `amount` (money) at time t."""
        if amount > 0:
            self._spend_t.append(t)
            self._spend_kind.append(kind)
            self._spend_amount.append(amount)

    def _record_change(self, account: int, t: float, state: AccountState, mrr: int, seats: int) -> None:
        self._change_account.append(account)
        self._change_t.append(t)
        self._change_state.append(state)
        self._change_mrr.append(mrr)
        self._change_seats.append(seats)

    # --- aggregation ------------------------------------------------------------------
    def close(self) -> Ledger:
        """Freeze the records into month-end matrices and accrued cohort revenue (once: the
        writer hands its records over and keeps none)."""
        spend = spend_by_month(
            _hand_over(self._spend_t, np.float64),
            _hand_over(self._spend_kind, np.int64),
            _hand_over(self._spend_amount, np.float64),
            self.months,
        )
        return freeze(
            months=self.months,
            currency=self.currency,
            gross_margin=self.gross_margin,
            cost_to_serve_per_seat=self.cost_to_serve_per_seat,
            segment_names=self.segment_names,
            user_signup_t=_hand_over(self._signup_t, np.float64),
            user_channel=_hand_over(self._channel, np.int8),
            user_segment=_hand_over(self._segment, np.int16),
            user_account=_hand_over(self._account, np.int64),
            user_inviter=_hand_over(self._inviter, np.int64),
            user_activated_t=_hand_over(self._activated_t, np.float64),
            user_invites_sent=_hand_over(self._invites_sent, np.int32),
            user_invites_accepted=_hand_over(self._invites_accepted, np.int32),
            account_owner=_hand_over(self._owner, np.int64),
            account_first_paid_t=_hand_over(self._first_paid_t, np.float64),
            account_trial_end_t=_hand_over(self._trial_end_t, np.float64),
            account_trial_converted=_hand_over(self._trial_converted, np.bool_),
            account_end_t=_hand_over(self._end_t, np.float64),
            changes=AccountChanges(
                account=_hand_over(self._change_account, np.int64),
                t=_hand_over(self._change_t, np.float64),
                state=_hand_over(self._change_state, np.int64),
                mrr_cents=_hand_over(self._change_mrr, np.int64),
                seats=_hand_over(self._change_seats, np.int64),
            ),
            spend=spend,
        )


def _hand_over(column: list[Any], dtype: type[np.generic], chunk: int = 16_384) -> NDArray[Any]:
    """`column` as an array; the list is emptied, freeing its Python objects at once (a large
    run's records are tens of millions of them, which the cyclic collector would otherwise
    walk again).

    NOTE: for performance reasons. Copied and freed a chunk at a time, from the end, so that
    each object is freed while the copy has it in cache: 0.93-1.03 s for the SimPy engine's
    ledger at 10^6 signups, against 1.38 s for the whole column copied, then freed. A value
    that does not fit `dtype` raises with the column part-emptied: the writer is of no further
    use then."""
    array = np.empty(len(column), dtype=dtype)
    end = len(column)
    while end > 0:
        start = max(end - chunk, 0)
        array[start:end] = column[start:end]
        del column[start:end]
        end = start
    return array


def spend_by_month(t: Floats, kind: Ints, amount: Floats, months: int) -> Floats:
    """(kinds, months) money spent, from records of spend at times t (those past the horizon
    dropped)."""
    cells = kind * months + np.floor(t).astype(np.int64)
    inside = t < months
    total = np.bincount(cells[inside], weights=amount[inside], minlength=len(SpendKind) * months).astype(np.float64)
    return total.reshape(len(SpendKind), months)


@dataclass(frozen=True)
class AccountChanges:
    """Every change of every account's state, MRR (cents) and paid seats, in any order of
    accounts; an account's changes at the same time are in the order they happened."""

    account: Ints
    t: Floats
    state: Ints
    mrr_cents: Ints
    seats: Ints


def freeze(
    *,
    months: int,
    currency: str,
    gross_margin: float,
    cost_to_serve_per_seat: float,
    segment_names: tuple[str, ...],
    user_signup_t: Floats,
    user_channel: NDArray[np.int8],
    user_segment: NDArray[np.int16],
    user_account: Ints,
    user_inviter: Ints,
    user_activated_t: Floats,
    user_invites_sent: NDArray[np.int32],
    user_invites_accepted: NDArray[np.int32],
    account_owner: Ints,
    account_first_paid_t: Floats,
    account_trial_end_t: Floats,
    account_trial_converted: NDArray[np.bool_],
    account_end_t: Floats,
    changes: AccountChanges,
    spend: Floats,
    money_changes: Ints | None = None,
) -> Ledger:
    """The frozen Ledger of a run's records: every engine ends here, so that the month-end
    matrices and accrued revenue are computed one way only. Times are ≥ 0.

    `money_changes` (optional, for speed): the indices, in increasing order, of at least the
    records that move money or seats: each with nonzero MRR or seats, and the next record of
    the same account after each of those. The others change neither (from 0 to 0), so the
    ledger is the same with or without them; freeze otherwise takes every record of each
    account that paid or ever had MRR or seats."""
    n_accounts = len(account_owner)
    in_order = _in_time_order(changes)
    if in_order is not changes:
        money_changes = None  # indices into the records as given
    changes = in_order
    # NOTE: for performance reasons. The account states' matrix, a pass over every record, is
    # filled on another core (where there is one) while this thread computes the rest: about
    # 10 ms of the 35 that freezing a run of a million users took. Its memory is allocated and first
    # written here: first written on the other thread, fresh pages took up to 8 times as long.
    threaded = _worth_a_thread(len(changes.t))
    account_state, *scratch = _month_end_room(n_accounts, months, np.int8, written=threaded)
    state_fill = (changes.account, changes.t, changes.state, account_state, *scratch)
    beside = _Beside(_fill_month_ends, *state_fill) if threaded else None

    paid_account = np.flatnonzero(~np.isnan(account_first_paid_t))
    row_of = np.full(n_accounts, -1, dtype=np.int64)
    row_of[paid_account] = np.arange(len(paid_account))
    # Money and seats come from a few percent of all records: those named in money_changes, or
    # else every record of each account that paid or ever had MRR or seats (the other accounts'
    # records add nothing to either).
    if money_changes is None:
        priced = row_of >= 0
        priced[changes.account[(changes.mrr_cents != 0) | (changes.seats != 0)]] = True
        picked = np.flatnonzero(priced[changes.account])
    else:
        picked = money_changes
    # By account, then time: the order in which the accrual has always added them up (float sums).
    order, acc = _stable_order(changes.account[picked])
    picked = picked[order]
    t, mrr, seats = changes.t[picked], changes.mrr_cents[picked], changes.seats[picked]
    row = row_of[acc]
    paid = row >= 0
    paid_args = (row[paid], t[paid])
    paid_mrr = _month_end_values(*paid_args, mrr[paid], len(paid_account), months, np.int64)
    paid_seats = _month_end_values(*paid_args, seats[paid], len(paid_account), months, np.int64)

    first_of_account = np.ones(len(acc), dtype=bool)
    first_of_account[1:] = acc[1:] != acc[:-1]
    cohort_of_change = np.floor(user_signup_t[account_owner[acc]]).astype(np.int64)  # the owner's signup month
    cohort_revenue = _accrue(cohort_of_change, t, _deltas(mrr, first_of_account), months) / 100.0
    cohort_seat_months = _accrue(cohort_of_change, t, _deltas(seats, first_of_account), months)
    if beside is not None:
        beside.result()
    else:
        _fill_month_ends(*state_fill)

    return Ledger(
        months=months,
        currency=currency,
        gross_margin=gross_margin,
        cost_to_serve_per_seat=cost_to_serve_per_seat,
        segment_names=segment_names,
        user_signup_t=user_signup_t,
        user_channel=user_channel,
        user_segment=user_segment,
        user_account=user_account,
        user_inviter=user_inviter,
        user_activated_t=user_activated_t,
        user_left_t=account_end_t[user_account] if n_accounts else np.zeros(0),
        user_invites_sent=user_invites_sent,
        user_invites_accepted=user_invites_accepted,
        account_owner=account_owner,
        account_first_paid_t=account_first_paid_t,
        account_trial_end_t=account_trial_end_t,
        account_trial_converted=account_trial_converted,
        account_state=account_state,
        paid_account=paid_account,
        paid_mrr_cents=paid_mrr,
        paid_seats=paid_seats,
        cohort_revenue=cohort_revenue,
        cohort_seat_months=cohort_seat_months,
        spend=spend,
    )


SIDE_THREAD_RECORDS = 200_000
"""Records from which freeze fills the account states' matrix on a thread of its own."""


def _worth_a_thread(records: int) -> bool:
    return records >= SIDE_THREAD_RECORDS and cores_for_this_process() > 1


class _Beside(threading.Thread):
    """`fn(*args)` on a thread of its own, started at once; `result()` waits for it to end (a
    process that forks pool workers must then run a single thread, see runner.executors)."""

    def __init__(self, fn: Callable[..., Any], *args: Any) -> None:
        super().__init__(name="ledger-beside", daemon=True)
        self._call = partial(fn, *args)
        self._value: Any = None
        self._error: BaseException | None = None
        self.start()

    def run(self) -> None:
        try:
            self._value = self._call()
        except BaseException as error:  # raised again in the waiting thread
            self._error = error

    def result(self) -> Any:
        self.join()
        if self._error is not None:
            raise self._error
        return self._value


def _in_time_order(changes: AccountChanges) -> AccountChanges:
    """The records in time order, ties in the order in which they happened. Event-driven engines
    record in time order: then the records themselves."""
    if np.all(changes.t[1:] >= changes.t[:-1]):
        return changes
    by_time = np.argsort(changes.t, kind="stable")
    return AccountChanges(
        account=changes.account[by_time],
        t=changes.t[by_time],
        state=changes.state[by_time],
        mrr_cents=changes.mrr_cents[by_time],
        seats=changes.seats[by_time],
    )


def _stable_order(ids: Ints) -> tuple[Ints, Ints]:
    """The indices that sort non-negative `ids` stably, and the sorted ids. One sort of the distinct
    keys id × n + index gives the stable order about three times faster than a stable argsort of
    64-bit ids; the keys fit in 64 bits while ids and n are below 2^31."""
    n = len(ids)
    keys = ids * n + np.arange(n)
    keys.sort()
    sorted_ids, order = np.divmod(keys, max(n, 1))
    return order, sorted_ids


def _deltas(values: Ints, first_of_row: NDArray[np.bool_]) -> Ints:
    """Change of each record from the previous record of the same row (from 0 for the first)."""
    previous = np.empty_like(values)
    previous[0:1] = 0
    previous[1:] = values[:-1]
    previous[first_of_row] = 0
    return values - previous


def _month_end_values(
    rows: Ints, t: Floats, values: Ints, n_rows: int, months: int, dtype: type[np.signedinteger[Any]]
) -> NDArray[Any]:
    """(n_rows, months) matrix of each row's value at each month end: the value of its last
    record before the end of that month, 0 before its first. Each row's records are in time order
    (rows may interleave). `dtype` must hold every value (int8 keeps the state matrix small)."""
    matrix, since, value = _month_end_room(n_rows, months, dtype)
    _fill_month_ends(rows, t, values, matrix, since, value)
    return matrix


def _month_end_room(
    n_rows: int, months: int, dtype: type[np.signedinteger[Any]], *, written: bool = False
) -> tuple[NDArray[Any], Ints, NDArray[Any]]:
    """A zero (n_rows, months) matrix (`written`: once, here, so that its pages are this
    thread's), and the fill's scratch room: each row's first month not written yet, and its
    value from that month on."""
    matrix = np.zeros((n_rows, months), dtype=dtype)
    if written:
        matrix.fill(0)
    return matrix, np.zeros(n_rows, dtype=np.int64), np.zeros(n_rows, dtype=dtype)


# NOTE: for performance reasons. Compiled, one pass over the records writes each row's runs of
# equal values; numpy needed a sort of the records by row, then by month, and a transposition
# (6-8× slower at 10^5 and 10^6 accounts). Integer copies only: the same values either way.
@njit(cache=True, boundscheck=True, nogil=True)  # nogil: freeze runs it beside other work
def _fill_month_ends(
    rows: Ints, t: Floats, values: Ints, matrix: NDArray[Any], since: Ints, value: NDArray[Any]
) -> None:
    n_rows, months = matrix.shape
    for i in range(len(rows)):
        if not t[i] < months:
            continue  # beyond the horizon
        row, month = rows[i], int(np.floor(t[i]))
        # The matrix starts at 0, which most runs are (accounts are free until they leave).
        if value[row] != 0:
            matrix[row, since[row] : month] = value[row]
        value[row] = values[i]
        since[row] = month
    for row in range(n_rows):
        if value[row] != 0:
            matrix[row, since[row] :] = value[row]


def _accrue(cohorts: Ints, t: Floats, deltas: Ints, months: int) -> Floats:
    """(months, months) integral over each month of piecewise-constant values, by cohort.
    A delta at time t counts for the rest of its month (fraction ceil-to-month) and in full
    for every later month."""
    bins = np.floor(t).astype(np.int64)
    inside = bins < months
    cohorts, t, bins, d = cohorts[inside], t[inside], bins[inside], deltas[inside].astype(np.float64)
    width = months + 1
    cells = months * width
    full = np.bincount(cohorts * width + bins + 1, weights=d, minlength=cells).astype(np.float64)
    partial = np.bincount(cohorts * width + bins, weights=d * (bins + 1 - t), minlength=cells).astype(np.float64)
    return (np.cumsum(full.reshape(months, width), axis=1) + partial.reshape(months, width))[:, :months]
