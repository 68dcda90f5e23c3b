"""Metrics on a tiny hand-made ledger, every expected figure worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from simulator import metrics
from simulator.ledger import AccountState, Channel, Ledger, LedgerWriter, SpendKind

PAYING = AccountState.PAYING


def _open(writer: LedgerWriter, t: float, channel: Channel = Channel.ORGANIC) -> int:
    account = writer.new_account(t, writer.next_user_id, AccountState.FREE)
    writer.user_signed_up(t, channel, 0, account, -1)
    return account


@pytest.fixture(scope="module")
def ledger() -> Ledger:
    """Four accounts over 14 months (money in whole currency units; the ledger keeps cents):

    A: signs up 0.1, pays 100 from t=0.5 on.
    B: signs up 0.1, pays 200 from 0.2, 300 from 5.5 (expansion), 150 from 13.3 (contraction).
    C: signs up 1.2, pays 50 from 1.5, churns at 3.2, pays 60 again from 8.1 (reactivation).
    D: signs up 12.0 from the paid channel, pays 80 from 12.4.
    """
    w = LedgerWriter(months=14, segment_names=("all",), gross_margin=0.5)
    a, b = _open(w, 0.1), _open(w, 0.1)
    c = _open(w, 1.2)
    d = _open(w, 12.0, Channel.PAID)
    changes = [
        (0.2, b, PAYING, 20_000),
        (0.5, a, PAYING, 10_000),
        (1.5, c, PAYING, 5_000),
        (3.2, c, AccountState.FREE, 0),
        (5.5, b, PAYING, 30_000),
        (8.1, c, PAYING, 6_000),
        (12.4, d, PAYING, 8_000),
        (13.3, b, PAYING, 15_000),
    ]
    for t, account, state, cents in changes:
        w.account_changed(t, account, state, cents, 1 if cents else 0)
    w.spent(0.0, SpendKind.PAID_MEDIA, 1000.0)
    w.spent(12.0, SpendKind.PAID_MEDIA, 400.0)
    return w.close()


def test_mrr_at_month_ends(ledger: Ledger) -> None:
    expected = [300, 350, 350, 300, 300, 400, 400, 400, 460, 460, 460, 460, 540, 390]
    assert metrics.mrr(ledger).tolist() == expected
    assert metrics.paying_accounts(ledger).tolist() == [2, 3, 3, 2, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4]


def test_waterfall_by_hand(ledger: Ledger) -> None:
    flows = metrics.mrr_waterfall(ledger)
    assert flows.new[0] == 30_000 and flows.new[1] == 5_000 and flows.new[12] == 8_000
    assert flows.churned[3] == 5_000
    assert flows.expansion[5] == 10_000
    assert flows.reactivation[8] == 6_000
    assert flows.contraction[13] == 15_000
    total = flows.new.sum() + flows.expansion.sum() + flows.reactivation.sum()
    assert total - flows.contraction.sum() - flows.churned.sum() == metrics.mrr_cents(ledger)[-1]


def test_nrr_grr_by_hand(ledger: Ledger) -> None:
    nrr = metrics.nrr_trailing(ledger)
    grr = metrics.grr_trailing(ledger)
    assert np.isnan(nrr[:12]).all() and np.isnan(grr[:12]).all()
    # m=12: cohorts with first payment ≤ month 0 are A and B: (100 + 300) / (100 + 200).
    assert nrr[12] == pytest.approx(400 / 300)
    # GRR caps B at its month-0 MRR: (100 + 200) / 300.
    assert grr[12] == pytest.approx(1.0)
    # m=13: cohorts ≤ month 1 are A, B, C: (100 + 150 + 60) / (100 + 200 + 50).
    assert nrr[13] == pytest.approx(310 / 350)
    # GRR: min(100,100) + min(150,200) + min(60,50) over 350.
    assert grr[13] == pytest.approx(300 / 350)


def test_churn_rates_and_monthly_nrr(ledger: Ledger) -> None:
    logo = metrics.logo_churn_rate(ledger)
    assert logo[3] == pytest.approx(1 / 3)
    assert logo[4] == 0.0
    revenue = metrics.revenue_churn_rate(ledger)
    assert revenue[13] == pytest.approx(150 / 540)
    assert metrics.nrr_monthly(ledger)[13] == pytest.approx((540 - 150) / 540)
    assert metrics.arpa(ledger)[13] == pytest.approx(390 / 4)


def test_cac_and_payback(ledger: Ledger) -> None:
    new = metrics.new_paying_accounts(ledger)
    assert new[0] == 2 and new[1] == 1 and new[12] == 1
    assert metrics.blended_cac(ledger)[0] == pytest.approx(500.0)
    assert metrics.blended_cac_total(ledger) == pytest.approx(1400 / 4)
    assert metrics.paid_cac(ledger) == pytest.approx(1400 / 1)
    # New-account ARPA: (300 + 50 + 80) / 4 accounts, gross margin 0.5.
    assert metrics.new_account_arpa(ledger) == pytest.approx(430 / 4)
    assert metrics.cac_payback_formula(ledger) == pytest.approx(350 / (107.5 * 0.5))


def test_revenue_is_accrued_within_months(ledger: Ledger) -> None:
    # Cohort 0 (A and B) in month 0: A pays 100 for half the month, B 200 for 0.8 of it.
    assert ledger.cohort_revenue[0, 0] == pytest.approx(100 * 0.5 + 200 * 0.8)
    # Month 5: A 100, B 200 for 0.5 then 300 for 0.5.
    assert ledger.cohort_revenue[0, 5] == pytest.approx(100 + 250)
    # Cohort 0 spent 1000 in month 0; margin 0.5 × revenue: 105, then 150/month until month 5.
    margin = np.cumsum(metrics.cohort_gross_margin(ledger)[0])
    payback = metrics.cac_payback_by_cohort(ledger)[0]
    k = int(np.floor(payback))
    assert margin[k - 1] < 1000 <= margin[k]
    assert k + (1000 - margin[k - 1]) / (margin[k] - margin[k - 1]) == pytest.approx(payback)


def test_retention_tables(ledger: Ledger) -> None:
    logos, revenue = metrics.account_retention(ledger)
    # First-payment cohort 1 is C alone: paying at ages 0, 1, gone at 2..6, back at 7.
    assert logos[1, :8].tolist() == [1, 1, 0, 0, 0, 0, 0, 1]
    assert revenue[1, 7] == pytest.approx(60 / 50)
    assert np.isnan(logos[1, 13])  # beyond the horizon


def test_active_users_by_state_by_hand(ledger: Ledger) -> None:
    # One user per account, none leaves: A and B from month 0, C from 1, D from 12. C is free in
    # months 3-7 (stopped paying at 3.2, back at 8.1); every other active user is paying.
    by_state = metrics.active_users_by_state(ledger)
    paying = metrics.paying_accounts(ledger)
    active = np.array([2] + [3] * 11 + [4] * 2)
    free = np.array([0, 0, 0, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    assert by_state[0].tolist() == free.tolist()
    assert by_state[1].tolist() == [0] * 14
    assert by_state[2].tolist() == paying.tolist() == (active - free).tolist()


def test_shared_tables_are_kept_and_results_are_the_callers(ledger: Ledger) -> None:
    """Metrics share tables kept in the ledger's memo; what they return is the caller's to change."""
    first = metrics.mrr_waterfall(ledger)
    first.new[:] = -1
    assert metrics.mrr_waterfall(ledger).new[0] == 30_000
    assert metrics.paying_accounts(ledger) is not metrics.paying_accounts(ledger)
    assert ledger.memo, "the metrics above keep their shared tables"
    kept = [table for table in ledger.memo.values() if isinstance(table, np.ndarray)]
    assert kept and not any(table.flags.writeable for table in kept)
