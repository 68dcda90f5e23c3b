"""Both engines: reproducibility, exact accounting on every bundled scenario, price response,
timeline interventions, billing periods and limits. Each test runs once per engine."""

from __future__ import annotations

import dataclasses
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from simulator import Result, Scenario, SimulationLimitError, load_scenario, metrics, run
from simulator.ledger import AccountState, Ledger
from simulator.scenario.merge import deep_merge

SCENARIOS = sorted((Path(__file__).parent.parent / "scenarios").glob("*.toml"))
ENGINES = ("fast", "simpy")
engines = pytest.mark.parametrize("engine", ENGINES)


@cache
def bundled(path: Path, engine: str) -> Result:
    # The SimPy engine takes about 10 s for 36 months of a bundled scenario; 14 months still
    # covers every scenario's timeline and the first NRR month.
    overrides = {"simulation.engine": engine} | ({"simulation.months": 14} if engine == "simpy" else {})
    return run(load_scenario(path, overrides))


def scenario(**sections: Any) -> Scenario:
    """A quiet base scenario (nothing happens unless a test turns it on) with `sections` merged in."""
    base: dict[str, Any] = {
        "simulation": {"months": 12, "seed": 3},
        "market": {"size": 1e12},
        "onboarding": {"self_serve": {"activation_probability": 1.0, "time_to_value": {"median_days": 0}}},
        "churn": {"free_hazard": 0.0, "unactivated_hazard": 0.0},
        "virality": {"invites_per_user": 0.0},
    }
    return Scenario.model_validate(deep_merge(base, sections))


def test_bundled_scenarios_exist() -> None:
    assert len(SCENARIOS) >= 7


@engines
@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_waterfall_identity_is_exact_every_month(path: Path, engine: str) -> None:
    ledger = bundled(path, engine).ledger
    flows = metrics.mrr_waterfall(ledger)
    mrr = metrics.mrr_cents(ledger)
    previous = np.concatenate([[0], mrr[:-1]])
    rebuilt = previous + flows.new + flows.expansion + flows.reactivation - flows.contraction - flows.churned
    assert mrr.dtype.kind == "i"  # integer cents: "exact" means exact
    np.testing.assert_array_equal(rebuilt, mrr)
    assert mrr[-1] > 0, "every bundled scenario should earn revenue"


@engines
@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_bundled_results_are_consistent(path: Path, engine: str) -> None:
    result = bundled(path, engine)
    series = result.monthly
    # Users by state add up; paying users only exist with paying accounts.
    assert (series["active_free"] + series["active_trial"] + series["active_paying"] == series["active_users"]).all()
    assert ((series["active_paying"] > 0) == (series["paying_accounts"] > 0)).all()
    assert (series["seats"] >= series["paying_accounts"]).all()
    # Cumulative signups never exceed the market, and no more users are active than signed up.
    assert series["signups"].sum() <= result.scenario.market.size
    assert (series["active_users"] <= np.cumsum(series["signups"])).all()
    grr, nrr = series["grr_12m"][12:], series["nrr_12m"][12:]
    assert ((grr >= 0) & (grr <= 1)).all()
    assert (grr <= nrr + 1e-12).all()


def _arrays(ledger: Ledger) -> dict[str, Any]:
    return {f.name: getattr(ledger, f.name) for f in dataclasses.fields(ledger)}


@engines
def test_segment_shares_within_the_schema_tolerance_run(engine: str) -> None:
    # The schema accepts shares summing to within 1e-6 of 1; the samplers must not refuse them.
    tiny = load_scenario(Path(__file__).parent / "data" / "tiny.toml", {"segments.solo.share": 0.6 + 5e-7})
    assert sum(s.share for s in tiny.segments.values()) != 1.0
    assert run(tiny, months=3, engine=engine).ledger.users > 0


@engines
def test_same_seed_is_bit_identical_and_seeds_differ(engine: str) -> None:
    base = load_scenario(SCENARIOS[0], {"simulation.months": 8})
    first, second = _arrays(run(base, engine=engine).ledger), _arrays(run(base, engine=engine).ledger)
    for name, value in first.items():
        if isinstance(value, np.ndarray):
            assert value.tobytes() == second[name].tobytes(), name
    other = run(base, seed=base.simulation.seed + 1, engine=engine).ledger
    assert not np.array_equal(other.user_signup_t[:50], first["user_signup_t"][:50])


@engines
def test_common_random_numbers_keep_unrelated_draws(engine: str) -> None:
    """Changing a price leaves arrivals, activations and traits of accounts untouched."""
    cheap = scenario(
        acquisition={"organic": {"signups_per_month": 300}}, pricing={"plans": {"pro": {"price_per_seat": 10}}}
    )
    dear = scenario(
        acquisition={"organic": {"signups_per_month": 300}}, pricing={"plans": {"pro": {"price_per_seat": 30}}}
    )
    a, b = run(cheap, engine=engine).ledger, run(dear, engine=engine).ledger
    np.testing.assert_array_equal(a.user_signup_t, b.user_signup_t)
    np.testing.assert_array_equal(a.user_activated_t, b.user_activated_t)


def _priced(price: float, engine: str) -> Ledger:
    return run(
        scenario(
            simulation={"months": 12, "seed": 11},
            acquisition={"organic": {"signups_per_month": 400}},
            monetization={"conversion_hazard": 0.5},
            churn={"free_hazard": 0.3},
            pricing={"plans": {"pro": {"price_per_seat": price}}},
            segments={"everyone": {"wtp": {"median": 25, "sigma": 0.8}, "seats": {"initial_mean": 3}}},
        ),
        engine=engine,
    ).ledger


@settings(max_examples=12, deadline=None)
@given(low=st.floats(5, 40), step=st.floats(1.2, 2.0))
@engines
def test_higher_price_lowers_conversion_and_raises_arpa(low: float, step: float, engine: str) -> None:
    """With common random numbers each account's willingness to pay and timing are the same
    at both prices, so conversion can only fall; new-account ARPA rises because the price
    rises by at least 20% while the seat mix of the remaining buyers moves by a few percent."""
    cheap, dear = _priced(low, engine), _priced(low * step, engine)
    converted_cheap = metrics.new_paying_accounts(cheap).sum()
    converted_dear = metrics.new_paying_accounts(dear).sum()
    assert converted_dear <= converted_cheap
    assert converted_cheap > 100  # enough buyers for ARPA to mean something
    if converted_dear > 100:
        assert metrics.new_account_arpa(dear) > metrics.new_account_arpa(cheap)


def _paid_only(**extra: Any) -> Scenario:
    base: dict[str, Any] = {
        "simulation": {"months": 30},
        "acquisition": {"organic": {"signups_per_month": 200}},
        "monetization": {"model": "paid_only"},
        "pricing": {"plans": {"pro": {"price_per_seat": 20}}},
        "segments": {"everyone": {"wtp": {"median": 30, "sigma": 0.5}}},
    }
    return scenario(**deep_merge(base, extra))


@engines
def test_grandfathered_price_rise_leaves_existing_customers_alone(engine: str) -> None:
    rise = {"timeline": [{"kind": "price_change", "month": 10, "plan": "pro", "change": 0.5, "applies_to": "new"}]}
    churn = {"churn": {"alpha": 0.01, "beta": 100}}
    before, after = (
        run(_paid_only(**churn), engine=engine).ledger,
        run(_paid_only(**churn, **rise), engine=engine).ledger,
    )
    old = metrics.new_paying_accounts(before)[:10].sum()
    assert old == metrics.new_paying_accounts(after)[:10].sum()
    # Accounts that started before month 10 keep paying 20 per seat: no expansion from the rise.
    assert metrics.mrr_waterfall(after).expansion.sum() == 0
    started = np.floor(after.account_first_paid_t[after.paid_account]) < 10
    per_seat = after.paid_mrr_cents[started, 20] / np.maximum(after.paid_seats[started, 20], 1)
    assert set(per_seat[after.paid_mrr_cents[started, 20] > 0].tolist()) == {2000.0}
    # New customers pay 30 per seat, and fewer of them buy.
    assert metrics.new_paying_accounts(after)[10:].sum() < metrics.new_paying_accounts(before)[10:].sum()


@engines
def test_price_rise_for_all_reprices_at_renewal_and_churns_those_priced_out(engine: str) -> None:
    rise = {
        "timeline": [{"kind": "price_change", "month": 10, "plan": "pro", "change": 0.5, "applies_to": "all"}],
        "churn": {"alpha": 0.01, "beta": 100, "price_increase_churn": 1.0},
    }
    ledger = run(_paid_only(**rise), engine=engine).ledger
    started = np.floor(ledger.account_first_paid_t[ledger.paid_account]) < 10
    paying_at_9 = ledger.paid_mrr_cents[started, 9] > 0
    # One month after the change every monthly account has renewed: survivors pay 30 per seat.
    at_11 = ledger.paid_mrr_cents[started, 11]
    seats_11 = np.maximum(ledger.paid_seats[started, 11], 1)
    survivors = paying_at_9 & (at_11 > 0)
    assert set((at_11[survivors] / seats_11[survivors]).tolist()) == {3000.0}
    # Those whose willingness to pay fell below 30 left (probability 1): with wtp ~ lognormal
    # (median 30), about half of the buyers at 20 are priced out.
    left = (paying_at_9 & (at_11 == 0)).mean() / paying_at_9.mean()
    assert 0.3 < left < 0.7
    assert metrics.mrr_waterfall(ledger).expansion[10:12].sum() > 0


@engines
def test_annual_contracts_churn_only_at_renewal(engine: str) -> None:
    annual = _paid_only(
        pricing={"plans": {"pro": {"price_per_seat": 20, "annual_share": 1.0, "annual_discount": 0.2}}},
        churn={"alpha": 2.0, "beta": 4.0},
    )
    ledger = run(annual, engine=engine).ledger
    paying = ledger.account_state == AccountState.PAYING
    first = ledger.account_first_paid_t
    for account in np.flatnonzero(~np.isnan(first)):
        stops = np.flatnonzero(paying[account, :-1] & ~paying[account, 1:])
        for stop in stops:
            # A stop in month `stop + 1` can only be 12k months after the first payment.
            tenure = stop + 1 - first[account]
            assert tenure >= 11, (account, tenure)
    # Annual price is discounted: 20 × 0.8 = 16 per seat.
    values = ledger.paid_mrr_cents[ledger.paid_mrr_cents > 0] / np.maximum(
        ledger.paid_seats[ledger.paid_mrr_cents > 0], 1
    )
    assert set(values.tolist()) == {1600.0}


@engines
def test_viral_growth_above_one_saturates_the_market(engine: str) -> None:
    viral = scenario(
        simulation={"months": 24},
        market={"size": 3000},
        acquisition={"organic": {"signups_per_month": 20}},
        virality={"invites_per_user": 6, "acceptance_rate": 0.5, "cycle_time": {"median_days": 5}},
    )
    ledger = run(viral, engine=engine).ledger
    assert metrics.viral_k(ledger, settle_months=0) > 0.5
    assert 0.9 * 3000 <= ledger.users <= 3000


@engines
def test_max_users_stops_the_run_with_a_clear_message(engine: str) -> None:
    capped = scenario(acquisition={"organic": {"signups_per_month": 1000}}, simulation={"max_users": 500})
    with pytest.raises(SimulationLimitError, match="max_users"):
        run(capped, engine=engine)


@engines
def test_timeline_events_past_the_horizon_never_happen(engine: str) -> None:
    """paid_push doubles the budget at month 9; cut to 4 months it is the baseline, draw for draw."""
    folder = SCENARIOS[0].parent
    short = {"simulation.months": 4}
    pushed = run(load_scenario(folder / "paid_push.toml", short), engine=engine).ledger
    baseline = run(load_scenario(folder / "baseline.toml", short), engine=engine).ledger
    np.testing.assert_array_equal(pushed.user_signup_t, baseline.user_signup_t)
    np.testing.assert_array_equal(pushed.paid_mrr_cents, baseline.paid_mrr_cents)


@engines
def test_progress_callback_sees_every_month_and_changes_nothing(engine: str) -> None:
    """Running month by month (for progress and cancellation) gives the same draws as one run."""
    scenario = load_scenario(SCENARIOS[0], {"simulation.months": 6})
    seen: list[float] = []
    stepped = run(scenario, on_progress=seen.append, engine=engine)
    whole = run(scenario, engine=engine)
    assert seen == [m / 6 for m in range(1, 7)]
    for name, values in _arrays(whole.ledger).items():
        np.testing.assert_array_equal(_arrays(stepped.ledger)[name], values, err_msg=name)


@engines
def test_progress_callback_can_stop_a_run(engine: str) -> None:
    class Stop(Exception):
        pass

    def stop_after_two(share: float) -> None:
        if share > 2 / 6:
            raise Stop

    with pytest.raises(Stop):
        run(load_scenario(SCENARIOS[0], {"simulation.months": 6}), on_progress=stop_after_two, engine=engine)


@pytest.mark.parametrize("name", ["price_rise_30.toml", "referral_push.toml", "reverse_trial.toml"])
def test_fast_engine_state_growing_from_a_few_rows_gives_the_same_ledger(name: str) -> None:
    # The fast engine's arrays (users, accounts, records, calendar chunks, a bucket's sorted run,
    # the heap) start with room for 2^17 users, more than a bundled scenario needs: started
    # with room for 64, every one of them grows many times (a price rise schedules one event
    # per paying account at once), and the run must not change by a single bit.
    from simulator.engines.fast_engine import run_fast

    chosen = load_scenario(Path(__file__).parent.parent / "scenarios" / name)
    roomy, grown = run_fast(chosen, seed=5), run_fast(chosen, seed=5, initial_rows=64)
    assert roomy.users > 64 * 2**6, "the small start must grow several times"
    for field in dataclasses.fields(Ledger):
        a, b = getattr(roomy, field.name), getattr(grown, field.name)
        if isinstance(a, np.ndarray):
            np.testing.assert_array_equal(a, b, err_msg=field.name)
        else:
            assert a == b, field.name


@engines
def test_a_paid_only_owner_whose_account_buys_nothing_is_not_counted_as_activated(engine: str) -> None:
    # At the owner's activation the account weighs the plans and, finding none worth its price
    # (willingness to pay far below the price), leaves in that same instant: both engines let
    # the account decide first, so the owner never counts as activated.
    cheap = _paid_only(
        segments={"everyone": {"wtp": {"median": 1, "sigma": 0.1}}},
        onboarding={"self_serve": {"time_to_value": {"median_days": 2}}},
    )
    ledger = run(cheap, engine=engine).ledger
    assert ledger.users > 1000
    assert metrics.new_paying_accounts(ledger).sum() == 0
    assert np.isnan(ledger.user_activated_t).all()
    assert (ledger.user_left_t < ledger.months).mean() > 0.99


def test_paid_only_engines_agree_on_activation_and_buyers() -> None:
    # The equivalence suite's bundled scenarios have no paid-only model. Here both engines run
    # one in which half the owners activate and about half of those find a plan worth its
    # price: 20 replications each, Welch's t-test at 0.1% on each of two quantities (the share
    # of users activated, and paying accounts at the horizon).
    paid_only = _paid_only(
        onboarding={"self_serve": {"activation_probability": 0.5, "time_to_value": {"median_days": 3}}},
        churn={"unactivated_hazard": 1.0},
    )
    samples: dict[str, tuple[list[float], list[float]]] = {}
    for engine in ENGINES:
        activated, paying = [], []
        for seed in range(20):
            ledger = run(paid_only, seed=1000 + seed, engine=engine).ledger
            activated.append(float(np.mean(~np.isnan(ledger.user_activated_t))))
            paying.append(float(metrics.paying_accounts(ledger)[-1]))
        samples[engine] = (activated, paying)
    for index in range(2):
        fast, simpy = samples["fast"][index], samples["simpy"][index]
        assert stats.ttest_ind(fast, simpy, equal_var=False).pvalue > 0.001, (index, np.mean(fast), np.mean(simpy))
    assert 0.1 < np.mean(samples["simpy"][0]) < 0.5  # owners who bought nothing are not counted
