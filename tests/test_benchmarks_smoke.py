"""The benchmark's naive model and scenario files work; no timing is asserted (shared machines)."""

from __future__ import annotations

import importlib.util
import inspect
import sys
from pathlib import Path
from types import ModuleType

import pytest

from simulator import load_scenario, metrics, run

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
SIZES = ("10k", "100k", "1m")


@pytest.fixture(scope="module")
def naive() -> ModuleType:
    # benchmarks/ is not a package: load the model from its file.
    spec = importlib.util.spec_from_file_location("naive_simpy", BENCHMARKS / "naive_simpy.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def test_benchmark_scenarios_scale_the_baseline() -> None:
    small, medium, large = (load_scenario(BENCHMARKS / "scenarios" / f"signups_{n}.toml") for n in SIZES)
    assert medium.market.size == pytest.approx(10 * small.market.size)
    assert large.market.size == pytest.approx(10 * medium.market.size)
    organic = (s.acquisition.organic.signups_per_month for s in (small, large))
    assert 100 * next(organic) == pytest.approx(next(organic))
    assert small.churn == load_scenario(BENCHMARKS.parent / "scenarios" / "baseline.toml").churn


def test_naive_model_is_deterministic_and_tracks_the_engine(naive: ModuleType) -> None:
    scenario = load_scenario(BENCHMARKS / "scenarios" / "signups_10k.toml", {"simulation.months": 6})
    first, again, other = naive.run_naive(scenario, 3), naive.run_naive(scenario, 3), naive.run_naive(scenario, 4)
    assert (first.users, first.mrr) == (again.users, again.mrr)
    assert (first.users, first.mrr) != (other.users, other.mrr)
    assert first.users == sum(first.signups.values())
    assert len(first.active_users) == len(first.mrr) == 6
    assert 0 < first.paying_accounts[-1] < first.active_users[-1] <= first.users
    # Its ledger holds the same story as its running tallies, so every metric reads it.
    ledger = first.ledger
    assert ledger.users == first.users
    assert metrics.active_users(ledger).tolist() == first.active_users
    assert metrics.paying_accounts(ledger).tolist() == first.paying_accounts
    assert metrics.mrr(ledger) == pytest.approx(first.mrr, abs=0.005)
    assert metrics.paid_seats(ledger)[-1] >= first.paying_accounts[-1]
    assert metrics.signups_by_channel(ledger).sum(axis=1).tolist() == list(first.signups.values())
    # Same lifecycle, same channels: the signup count is close to the reference engine's.
    reference = {"engine": "simpy"} if "engine" in inspect.signature(run).parameters else {}
    engine_users = run(scenario, seed=3, **reference).ledger.users
    assert first.users == pytest.approx(engine_users, rel=0.15)


def test_simpy_floor_counts_its_events() -> None:
    spec = importlib.util.spec_from_file_location("simpy_floor", BENCHMARKS / "simpy_floor.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    report = module.measure(users=2_000, timeouts=3, seed=1)
    # Every user arrives and runs all its timeouts: nothing is cut short by the run's end.
    assert report["events"] == 2_000 * (3 + 2)
    assert report["cpu_seconds"] > 0
