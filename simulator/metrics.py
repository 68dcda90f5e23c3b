"""KPIs and series as pure functions of a ledger, following the project's metric definitions.

Conventions: month m is the m-th reporting month (0 first); "at m" means at the end of month
m. Rates are fractions (0.05 = 5%). Money is in the scenario's currency, except the waterfall
which stays in integer cents so that its identity is exact. A ratio with a zero denominator
is NaN (shown as "n/a"), never a made-up number.

The tables that many metrics share (users' months, accounts paying at month ends, the MRR
waterfall, …) are computed once per ledger and kept in `Ledger.memo`: the digest of one run asks
for them dozens of times. Kept arrays are read-only; public functions return arrays of their own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields, is_dataclass, replace
from functools import wraps
from typing import Any, NamedTuple, TypeVar

import numpy as np
from numba import njit
from numpy.typing import ArrayLike, NDArray

from simulator.ledger import AccountState, Channel, Ledger, SpendKind
from simulator.scenario.models import DAYS_PER_MONTH

Floats = NDArray[np.float64]
Ints = NDArray[np.int64]


def _ratio(num: ArrayLike, den: ArrayLike) -> Floats:
    num_a = np.asarray(num, dtype=np.float64)
    den_a = np.asarray(den, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den_a != 0, num_a / np.where(den_a != 0, den_a, 1.0), np.nan)


def _month_of(t: Floats) -> Ints:
    return np.floor(np.nan_to_num(t, nan=-1.0, posinf=1e9)).astype(np.int64)


_Table = TypeVar("_Table")


def _once_per_ledger(compute: Callable[[Ledger], _Table]) -> Callable[[Ledger], _Table]:
    """`compute(ledger)`, computed on the first call for a ledger and kept in its memo. The kept
    arrays are made read-only, so that no caller can change what the next one reads."""
    key = compute.__qualname__

    @wraps(compute)
    def once(ledger: Ledger) -> _Table:
        memo = ledger.memo
        if key not in memo:
            table = compute(ledger)
            for array in _arrays_in(table):
                array.flags.writeable = False
            memo[key] = table
        return memo[key]

    return once


def _arrays_in(table: object) -> list[NDArray[Any]]:
    """The arrays of a table: an array, or those of a tuple or of a dataclass."""
    if is_dataclass(table):
        values = [getattr(table, f.name) for f in fields(table)]
    elif isinstance(table, tuple):
        values = list(table)
    else:
        values = [table]
    return [v for v in values if isinstance(v, np.ndarray)]


@_once_per_ledger
def _signup_month(ledger: Ledger) -> Ints:
    """(U,) each user's signup month: its cohort."""
    return _month_of(ledger.user_signup_t)


@_once_per_ledger
def _left_month(ledger: Ledger) -> Ints:
    """(U,) the month each user left (1e9 if it did not)."""
    return _month_of(ledger.user_left_t)


@_once_per_ledger
def _signups_by_cohort(ledger: Ledger) -> Ints:
    """(M,) users who signed up in each month."""
    return np.bincount(_signup_month(ledger), minlength=ledger.months)


@_once_per_ledger
def _activated_by_cohort(ledger: Ledger) -> Ints:
    """(M,) users of each signup cohort who activated (within the horizon)."""
    return np.bincount(_signup_month(ledger)[~np.isnan(ledger.user_activated_t)], minlength=ledger.months)


@_once_per_ledger
def _activation_delay(ledger: Ledger) -> Floats:
    """(U,) months from each user's signup to its activation (NaN if it did not activate)."""
    return ledger.user_activated_t - ledger.user_signup_t


@_once_per_ledger
def _payment_cohort(ledger: Ledger) -> Ints:
    """(P,) month of the first payment of each account that paid."""
    return _month_of(ledger.account_first_paid_t[ledger.paid_account])


# --- funnel ---------------------------------------------------------------------------------
def signups_by_channel(ledger: Ledger) -> Ints:
    """(4, M) signups per month by channel (paid, organic, word of mouth, viral)."""
    cells = ledger.user_channel.astype(np.int64) * ledger.months + _signup_month(ledger)
    return np.bincount(cells, minlength=len(Channel) * ledger.months).reshape(len(Channel), ledger.months)


def signups(ledger: Ledger) -> Ints:
    """(M,) signups per month, all channels."""
    return signups_by_channel(ledger).sum(axis=0)


def active_users_by_state(ledger: Ledger) -> Ints:
    """(3, M) users active at each month end whose account is free, in trial, or paying."""
    # A user is active at the ends of the months from its signup month up to the month it left.
    start = np.maximum(_signup_month(ledger), 0)
    stop = np.minimum(_left_month(ledger), ledger.months)
    counts = np.zeros((3, ledger.months), dtype=np.int64)
    _count_user_months(start, stop, ledger.user_account, ledger.account_state, counts)
    return counts


# NOTE: for performance reasons. Compiled, a loop over each user's active months reads the
# account's state in place; numpy needed an array of every user-month (about three per user) and
# several passes over it (5-7× slower at 10^5 and 10^6 users). Integer counts: the same either way.
@njit(cache=True, boundscheck=True)
def _count_user_months(start: Ints, stop: Ints, user_account: Ints, state: NDArray[np.int8], counts: Ints) -> None:
    """counts[s, m] += 1 for each user and each month m in [start, stop) of that user whose
    account is in state s at the end of m (states from len(counts) on are not counted)."""
    for user in range(len(start)):
        account = user_account[user]
        for month in range(start[user], stop[user]):
            s = state[account, month]
            if 0 <= s < len(counts):
                counts[s, month] += 1


def active_users(ledger: Ledger) -> Ints:
    """(M,) users active at each month end."""
    return active_users_by_state(ledger).sum(axis=0)


def activation_rate_by_cohort(ledger: Ledger, within_days: float | None = None) -> Floats:
    """(M,) share of each signup cohort that activated (within `within_days` of signup if given)."""
    delay = _activation_delay(ledger)
    ok = ~np.isnan(delay)
    if within_days is not None:
        ok &= delay <= within_days / DAYS_PER_MONTH
    hits = np.bincount(_signup_month(ledger)[ok], minlength=ledger.months)
    return _ratio(hits, _signups_by_cohort(ledger))


def time_to_value_days(ledger: Ledger) -> tuple[float, float]:
    """Median and P90 of signup-to-activation time, in days, over activated users."""
    delay = _activation_delay(ledger) * DAYS_PER_MONTH
    delay = delay[~np.isnan(delay)]
    if len(delay) == 0:
        return float("nan"), float("nan")
    return float(np.median(delay)), float(np.percentile(delay, 90))


def conversion_by_cohort(ledger: Ledger, within_days: float = 90.0) -> tuple[Floats, Floats]:
    """(M,) free→paid conversion of each signup cohort within `within_days`: accounts that
    started paying / signups, and / activated users."""
    owner = ledger.account_owner
    converted = ledger.account_first_paid_t - ledger.user_signup_t[owner] <= within_days / DAYS_PER_MONTH
    hits = np.bincount(_signup_month(ledger)[owner][converted], minlength=ledger.months)
    return _ratio(hits, _signups_by_cohort(ledger)), _ratio(hits, _activated_by_cohort(ledger))


def trial_conversion(ledger: Ledger) -> float:
    """Trials that became paying / trials that ended (NaN without trials)."""
    ended = ~np.isnan(ledger.account_trial_end_t)
    return float(_ratio(ledger.account_trial_converted[ended].sum(), ended.sum()))


# --- virality -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Virality:
    """Realised virality of signup cohorts (over the life of each cohort within the horizon)."""

    invites_per_activated: Floats  # (M,)
    acceptance_rate: float
    k_by_cohort: Floats  # (M,) viral signups attributed to the inviter's cohort / activated users
    cycle_time_days_median: float  # inviter's signup → invitee's signup


def virality(ledger: Ledger) -> Virality:
    """Invites, acceptance, the realised viral coefficient K by cohort and the cycle time."""
    kept = _virality(ledger)
    return replace(kept, invites_per_activated=kept.invites_per_activated.copy(), k_by_cohort=kept.k_by_cohort.copy())


@_once_per_ledger
def _virality(ledger: Ledger) -> Virality:
    months = ledger.months
    cohort = _signup_month(ledger)
    activated = _activated_by_cohort(ledger)
    sent = np.bincount(cohort, weights=ledger.user_invites_sent, minlength=months)
    invited = ledger.user_inviter >= 0
    inviter = ledger.user_inviter[invited]
    viral_by_cohort = np.bincount(cohort[inviter], minlength=months)
    cycle = (ledger.user_signup_t[invited] - ledger.user_signup_t[inviter]) * DAYS_PER_MONTH
    return Virality(
        invites_per_activated=_ratio(sent, activated),
        acceptance_rate=float(_ratio(ledger.user_invites_accepted.sum(), ledger.user_invites_sent.sum())),
        k_by_cohort=_ratio(viral_by_cohort, activated),
        cycle_time_days_median=float(np.median(cycle)) if len(cycle) else float("nan"),
    )


def viral_k(ledger: Ledger, settle_months: int = 6) -> float:
    """Pooled realised K of the cohorts that signed up at least `settle_months` before the
    horizon (all cohorts if the horizon is shorter), so late cohorts that have not had time to
    invite do not drag it down."""
    months = ledger.months
    last = months - settle_months if months > settle_months else months
    activated = _activated_by_cohort(ledger)[:last].sum()
    invited = ledger.user_inviter >= 0
    viral = (_signup_month(ledger)[ledger.user_inviter[invited]] < last).sum()
    return float(_ratio(viral, activated))


# --- revenue --------------------------------------------------------------------------------
def mrr_cents(ledger: Ledger) -> Ints:
    """(M,) MRR at each month end, in cents."""
    return _mrr_cents(ledger).copy()


@_once_per_ledger
def _mrr_cents(ledger: Ledger) -> Ints:
    return ledger.paid_mrr_cents.sum(axis=0)


def mrr(ledger: Ledger) -> Floats:
    """(M,) MRR at each month end, in money."""
    return _mrr_cents(ledger) / 100.0


def paying_accounts(ledger: Ledger) -> Ints:
    """(M,) accounts paying at each month end."""
    return _paying(ledger).at_month_end.copy()


class _Paying(NamedTuple):
    at_month_end: Ints  # (M,) accounts paying at the end of each month
    stopped: Ints  # (M − 1,) accounts paying at the end of month m and not at the end of m + 1


@_once_per_ledger
def _paying(ledger: Ledger) -> _Paying:
    """Accounts paying at month ends, and stopping, from the paying cells of the state matrix
    (a small share of it) in row-major order: by account, then month."""
    months = ledger.months
    cells = _paying_cells(ledger.account_state)
    month = cells % months
    # A paying cell is followed by the same account's next month unless the account stopped.
    continues = np.zeros(len(cells), dtype=bool)
    continues[:-1] = cells[1:] == cells[:-1] + 1
    stops = ~continues & (month < months - 1)
    return _Paying(np.bincount(month, minlength=months), np.bincount(month[stops], minlength=months - 1))


def _paying_cells(state: NDArray[np.int8]) -> Ints:
    """Row-major indices of the paying cells of an accounts × months state matrix."""
    # A block of accounts at a time, so that the block's mask stays in the CPU cache: twice as
    # fast as one mask of the whole matrix at 10^5 accounts, three times at 10^6.
    block = 1 << 15
    mask = np.empty((min(block, len(state)), state.shape[1]), dtype=bool)
    cells = [np.zeros(0, dtype=np.int64)]
    for first in range(0, len(state), block):
        rows = state[first : first + block]
        paying = np.equal(rows, AccountState.PAYING, out=mask[: len(rows)])
        cells.append(np.flatnonzero(paying) + first * state.shape[1])
    return np.concatenate(cells)


def paid_seats(ledger: Ledger) -> Ints:
    """(M,) paid seats at each month end."""
    return ledger.paid_seats.sum(axis=0)


@dataclass(frozen=True)
class Waterfall:
    """MRR movements of each month, in cents. MRR(m) = MRR(m−1) + new + expansion +
    reactivation − contraction − churned, exactly."""

    new: Ints
    expansion: Ints
    contraction: Ints
    churned: Ints
    reactivation: Ints


def mrr_waterfall(ledger: Ledger) -> Waterfall:
    """Classify each paying account's month-end MRR change."""
    flows = _waterfall(ledger)
    return Waterfall(*(np.array(getattr(flows, f.name)) for f in fields(Waterfall)))


@_once_per_ledger
def _waterfall(ledger: Ledger) -> Waterfall:
    months = ledger.months
    current = ledger.paid_mrr_cents
    # Every movement is a change from the month before, so only the cells that changed (a small
    # share of the matrix) are classified.
    change = np.diff(current, axis=1, prepend=0)
    cells = np.flatnonzero(change)
    row, month = np.divmod(cells, months)
    now, step = current.ravel()[cells], change.ravel()[cells]
    before = now - step
    starts = (before == 0) & (now > 0)
    first = month == _payment_cohort(ledger)[row]
    both = (before > 0) & (now > 0)

    def by_month(moved: NDArray[np.bool_], cents: Ints) -> Ints:
        # np.add.at on one axis is as fast as np.bincount and, unlike its float weights, exact.
        total = np.zeros(months, dtype=np.int64)
        np.add.at(total, month[moved], cents[moved])
        return total

    return Waterfall(
        new=by_month(starts & first, now),
        reactivation=by_month(starts & ~first, now),
        expansion=by_month(both & (step > 0), step),
        contraction=by_month(both & (step < 0), -step),
        churned=by_month((before > 0) & (now == 0), before),
    )


def mrr_by_payment_cohort(ledger: Ledger) -> Ints:
    """(M, M) cents: MRR at month end m (column) of accounts whose first payment was in month
    c (row); reactivated accounts stay in their original cohort."""
    return _mrr_by_payment_cohort(ledger).copy()


@_once_per_ledger
def _mrr_by_payment_cohort(ledger: Ledger) -> Ints:
    return _sum_by(_payment_cohort(ledger), ledger.paid_mrr_cents, ledger.months)


def nrr_trailing(ledger: Ledger, lag: int = 12) -> Floats:
    """(M,) net revenue retention over the trailing `lag` months (NaN for m < lag)."""
    matrix = _mrr_by_payment_cohort(ledger)
    out = np.full(ledger.months, np.nan)
    for m in range(lag, ledger.months):
        out[m] = _ratio(matrix[: m - lag + 1, m].sum(), matrix[: m - lag + 1, m - lag].sum())
    return out


def grr_trailing(ledger: Ledger, lag: int = 12) -> Floats:
    """(M,) gross revenue retention over the trailing `lag` months: each account's MRR at m
    capped at its MRR at m − lag (NaN for m < lag)."""
    values = ledger.paid_mrr_cents
    out = np.full(ledger.months, np.nan)
    if ledger.months > lag:
        base = values[:, : ledger.months - lag]
        out[lag:] = _ratio(np.minimum(values[:, lag:], base).sum(axis=0), base.sum(axis=0))
    return out


def nrr_monthly(ledger: Ledger) -> Floats:
    """(M,) one-month NRR: (MRR_start + expansion − contraction − churned) / MRR_start."""
    flows = _waterfall(ledger)
    start = np.concatenate([[0], _mrr_cents(ledger)[:-1]])
    return _ratio(start + flows.expansion - flows.contraction - flows.churned, start)


def logo_churn_rate(ledger: Ledger) -> Floats:
    """(M,) accounts that stopped paying in m / accounts paying at the end of m − 1."""
    paying = _paying(ledger)
    return np.concatenate([[np.nan], _ratio(paying.stopped, paying.at_month_end[:-1])])


def revenue_churn_rate(ledger: Ledger) -> Floats:
    """(M,) (churned + contraction) / MRR at the end of m − 1."""
    flows = _waterfall(ledger)
    start = np.concatenate([[0], _mrr_cents(ledger)[:-1]])
    return _ratio(flows.churned + flows.contraction, start)


def arpa(ledger: Ledger) -> Floats:
    """(M,) MRR / paying accounts, in money."""
    return _ratio(mrr(ledger), _paying(ledger).at_month_end)


def mean_logo_churn(ledger: Ledger) -> float:
    """Monthly logo churn over the whole horizon: stops / account-months at risk."""
    paying = _paying(ledger)
    return float(_ratio(paying.stopped.sum(), paying.at_month_end[:-1].sum()))


# --- acquisition cost and payback -----------------------------------------------------------
def acquisition_spend(ledger: Ledger) -> Floats:
    """(M,) all acquisition spend per month (paid media, onboarding, referral rewards)."""
    return ledger.spend.sum(axis=0)


def new_paying_accounts(ledger: Ledger, channel: Channel | None = None) -> Ints:
    """(M,) accounts whose first payment fell in each month (optionally: whose owner came
    from `channel`)."""
    if channel is None:
        return _new_paying_accounts(ledger).copy()
    first = ledger.account_first_paid_t
    keep = ~np.isnan(first) & (ledger.user_channel[ledger.account_owner] == channel)
    return np.bincount(_month_of(first[keep]), minlength=ledger.months)[: ledger.months]


@_once_per_ledger
def _new_paying_accounts(ledger: Ledger) -> Ints:
    """(M,) accounts whose first payment fell in each month, all channels."""
    first = ledger.account_first_paid_t
    return np.bincount(_month_of(first[~np.isnan(first)]), minlength=ledger.months)[: ledger.months]


def blended_cac(ledger: Ledger) -> Floats:
    """(M,) acquisition spend / new paying accounts, per month."""
    return _ratio(acquisition_spend(ledger), _new_paying_accounts(ledger))


def blended_cac_total(ledger: Ledger) -> float:
    """Acquisition spend / new paying accounts over the whole horizon."""
    return float(_ratio(acquisition_spend(ledger).sum(), _new_paying_accounts(ledger).sum()))


def paid_cac(ledger: Ledger) -> float:
    """Paid-media spend / new paying accounts whose owner came from the paid channel."""
    spend = ledger.spend[SpendKind.PAID_MEDIA].sum()
    return float(_ratio(spend, new_paying_accounts(ledger, Channel.PAID).sum()))


def new_account_arpa(ledger: Ledger) -> float:
    """Mean MRR of new accounts at the end of their first paying month, in money."""
    flows = _waterfall(ledger)
    current = ledger.paid_mrr_cents
    first_month = _payment_cohort(ledger)
    inside = first_month < ledger.months
    counted = (current[np.flatnonzero(inside), first_month[inside]] > 0).sum()
    return float(_ratio(flows.new.sum() / 100.0, counted))


def cac_payback_formula(ledger: Ledger) -> float:
    """Months: blended CAC / (ARPA of new accounts × gross margin). Ignores churn and expansion."""
    return float(_ratio(blended_cac_total(ledger), new_account_arpa(ledger) * ledger.gross_margin))


def cohort_gross_margin(ledger: Ledger) -> Floats:
    """(M, M) gross margin earned in month m (column) from accounts acquired in month c (row):
    revenue × gross margin − cost to serve the paid seats."""
    return ledger.cohort_revenue * ledger.gross_margin - ledger.cohort_seat_months * ledger.cost_to_serve_per_seat


def cac_payback_by_cohort(ledger: Ledger) -> Floats:
    """(M,) months from the start of acquisition month c until the cumulative gross margin of
    its accounts reaches that month's acquisition spend, interpolated within the month; NaN
    when not within the horizon (or nothing was spent)."""
    margin = cohort_gross_margin(ledger)
    spend = acquisition_spend(ledger)
    out = np.full(ledger.months, np.nan)
    for c in range(ledger.months):
        if spend[c] <= 0:
            continue
        cumulative = np.cumsum(margin[c, c:])
        reached = np.flatnonzero(cumulative >= spend[c])
        if len(reached):
            k = int(reached[0])
            before = cumulative[k - 1] if k > 0 else 0.0
            out[c] = k + (spend[c] - before) / (cumulative[k] - before)
    return out


def cac_payback_cohort_median(ledger: Ledger, cohorts: int = 12) -> float:
    """Median cohort-cash payback over the first `cohorts` acquisition months, counting
    "not within horizon" as longer than any; NaN when the median itself is not reached."""
    values = cac_payback_by_cohort(ledger)[:cohorts]
    spent = acquisition_spend(ledger)[:cohorts] > 0
    values = np.where(np.isnan(values), np.inf, values)[spent]
    if len(values) == 0:
        return float("nan")
    median = float(np.median(values))
    return median if np.isfinite(median) else float("nan")


def ltv_simple(ledger: Ledger) -> float:
    """ARPA at the horizon × gross margin / mean monthly logo churn (money per account)."""
    return float(_ratio(arpa(ledger)[-1] * ledger.gross_margin, mean_logo_churn(ledger)))


def ltv_to_cac(ledger: Ledger) -> float:
    """Simple LTV / blended CAC over the horizon."""
    return float(_ratio(ltv_simple(ledger), blended_cac_total(ledger)))


# --- retention tables -----------------------------------------------------------------------
def _sum_by(group: Ints, rows: NDArray[Any], groups: int) -> NDArray[Any]:
    """(groups, columns) sums of the rows of each group, in the rows' dtype (exact for
    integers); a sort and one reduceat, not np.add.at, which is slow on many rows."""
    out = np.zeros((groups, rows.shape[1]), dtype=rows.dtype)
    if len(group) == 0:
        return out
    order = np.argsort(group, kind="stable")
    sorted_group = group[order]
    starts = np.flatnonzero(np.r_[True, sorted_group[1:] != sorted_group[:-1]])
    out[sorted_group[starts]] = np.add.reduceat(rows[order], starts, axis=0)
    return out


def _by_age(rows: Ints, cohort: Ints, months: int) -> Floats:
    """Sum a (N, M) calendar-month matrix into (cohort, months since cohort start)."""
    return _to_age(_sum_by(cohort, rows, months), months)


def _to_age(calendar: NDArray[Any], months: int) -> Floats:
    """(cohort, calendar month) → (cohort, months since cohort start)."""
    out = np.zeros((months, months))
    for c in range(months):
        out[c, : months - c] = calendar[c, c:]
    return out


def user_retention(ledger: Ledger) -> Floats:
    """(M, M) share of each signup cohort (row) still active after k months (column); NaN
    beyond the horizon."""
    months = ledger.months
    cohort = _signup_month(ledger)
    # Counted from a histogram of (signup month, month left), not a users × months matrix: a
    # user is active at the end of month m if it left in a later month (or never).
    left = np.clip(_left_month(ledger), 0, months)
    width = months + 1
    left_by_cohort = np.bincount(cohort * width + left, minlength=months * width).reshape(months, width)
    left_then_or_later = np.cumsum(left_by_cohort[:, ::-1], axis=1)[:, ::-1]
    active = _to_age(left_then_or_later[:, 1:], months)
    return _normalise(active, _signups_by_cohort(ledger), months)


def account_retention(ledger: Ledger) -> tuple[Floats, Floats]:
    """(M, M) logo and revenue retention of first-payment cohorts: share still paying, and
    cohort MRR / its MRR at the end of its first month, by months since first payment."""
    months = ledger.months
    cohort = _payment_cohort(ledger)
    paying = (ledger.paid_mrr_cents > 0).astype(np.int64)
    logos = _by_age(paying, cohort, months)
    revenue = _to_age(_mrr_by_payment_cohort(ledger), months)
    return (
        _normalise(logos, np.bincount(cohort, minlength=months), months),
        _normalise(revenue, revenue[:, 0], months),
    )


def _normalise(table: Floats, start: Floats | Ints, months: int) -> Floats:
    out = _ratio(table, np.asarray(start, dtype=np.float64)[:, None])
    age = np.arange(months)[None, :]
    cohort = np.arange(months)[:, None]
    return np.where(cohort + age < months, out, np.nan)
