"""The fast engine against the SimPy reference: the same outcomes in distribution, and exactly
the same where nothing is random.

The fast engine runs the same events in the same order, but takes its random numbers in blocks
from each stream rather than one by one as the SimPy engine does, so it cannot reproduce the
SimPy engine draw for draw; what it must reproduce is the distribution of every reported
outcome.

**Procedure** (`compare_arms`, shared by every test here and by benchmarks/equivalence.py).
Each engine runs N_REPS independent replications of a scenario, with seeds spawned from a seed root
of its own (`seed_root`: engine and scenario named in it), so the two samples are independent.
For each of the six headline metrics (`METRICS`: users, paying accounts and MRR at the horizon,
NRR over the trailing 12 months, viral K, formula CAC payback) three tests compare the samples:

- two-sample Kolmogorov–Smirnov on the defined values (any difference in shape);
- Welch's t-test on the defined values (a difference in mean, without assuming equal spread);
- Fisher's exact test on the 2×2 table engine × defined/undefined. A metric can be undefined
  in a replication (NaN: a CAC payback with no new paying account, an NRR with no paying base a
  year earlier, a K with no activated user). Whether it is defined is itself an outcome: an
  engine that leaves a metric undefined twice as often differs, even if the values it does
  define have the right distribution. Conditional on which replications define it, the defined
  values of each engine are still independent draws from that engine's conditional
  distribution, so KS and Welch on them are valid tests of equal conditional distributions,
  and Fisher's test covers the rest. Dropping NaN (or counting it as 0) would hide the first.

**Family.** 8 bundled scenarios × 6 metrics × 3 tests = 144 tests (Fisher's test counts for
every metric, whether or not any value is undefined, so the family is fixed before the data are
seen). Bonferroni holds the family-wise error rate at 1%: each test rejects at p < 0.01 / 144 =
6.9e-5 (`PER_TEST_LEVEL`), whatever the dependence between the tests (the metrics of one
scenario are correlated). Seeds are fixed, so a given pair of engines gives the same verdict
on every run; an equivalent engine fails the suite for at most 1% of seed choices. The same
per-test level is used in the perturbation and benchmark comparisons: one procedure.

**Replications and power.** N_REPS = 50 per engine and scenario. For Welch's test at the
per-test level with 50 + 50 replications, the smallest standardized difference of means
(difference / standard deviation of one replication) detected with 80% power is d = 1.0
(noncentral t, 98 degrees of freedom; `detectable_difference`, checked in
`test_replication_count_has_the_stated_power`). With equal sample sizes the null distribution
of the difference of means is symmetric, so skewed metrics (MRR) do not bias its tails. In
terms of each metric's spread on the shrunk scenarios (coefficient of variation between SimPy
replications, 30 per scenario), d = 1 is a mean off by 7–11% for users, 15–19% for paying
accounts, 7–16% for viral K, 21–37% for CAC payback, 17–43% for NRR and 22–44% for MRR (a few
enterprise accounts carry much of the revenue of a small run). These are the sizes of a broken
mechanism, not of a subtle bias: activation 10% too low moves users at the horizon of the
shrunk baseline by d ≈ 1.2, caught with power 0.96 by that one test alone (on these seeds,
p = 2e-7: `benchmarks/equivalence.py --candidate fast-activation-10% --scale 0.05 --months 18`).
Subtle differences are the job of benchmarks/equivalence.py: at full size (about 50 times the
signups, 36 months) spreads are 5–10 times smaller (measured on 8 replications of the baseline
and trial_14d: users 1–2%, paying accounts 2–3%, viral K and NRR 2–4%, MRR and CAC payback
2–8%), and with 200 replications (d = 0.49) it detects a mean off by 1–2% in users, accounts,
K and NRR, 1–4% in MRR and CAC payback.
The budget sets N: CI has about 150 s on two cores, and one replication of each engine on a
shrunk scenario costs about 0.5 CPU-seconds; the whole file takes about 2 minutes.

**Shrinking the scenarios** (`shrunk`). A bundled scenario takes about 10 s per SimPy
replication over 36 months; CI runs each over CI_MONTHS = 18 months with every volume (market
size, paid budget and saturation budget, organic signups) scaled by CI_SCALE = 0.05, about 0.2 s
per replication and 1,500 signups. Word of mouth scales with active users and invites with
activated users, so both stay in proportion. 18 months keeps every timeline intervention (month
6, 9 or 12) inside the horizon with months to act, and leaves six cohorts in the NRR base at
month 18. `test_engines_agree_in_distribution` checks that every mechanism a scenario uses
still happens in both engines (signups from each of its channels, invites, conversions, churn,
expansion, reactivation).

**Teeth** (`test_the_procedure_detects_a_perturbed_engine`). The fast engine is run on a
scenario transformed the way a broken engine would behave: paid churn 10% higher (mean monthly
churn α/(α+β) × 1.1, α+β unchanged) or activation probability 10% lower; the same
`compare_arms` must then reject, and reject on paying accounts, in the right direction. This
runs on tests/data/equivalence/teeth.toml, a paid-only scenario whose paying-account stock is
near steady state, so it moves almost one for one with either rate: each perturbation lowers
paying accounts at the horizon by about 9%, d ≈ 2.9 (40 SimPy replications per arm; standard
error of that estimate about 0.35). With TEETH_REPS = 25 per arm, Welch's test on paying
accounts alone rejects at the per-test level with power 0.999 at d = 2.2 (the estimate less two
standard errors) and above 0.99999 at d = 2.9 (`welch_power`, checked in
`test_replication_count_has_the_stated_power`): passing is not luck. The unperturbed fast
engine must pass on the same scenario, or the rejection would prove nothing.

**Exact agreement** (`test_engines_agree_exactly_without_randomness`). On
tests/data/equivalence/deterministic.toml nothing random can change an outcome, so users,
paying accounts, MRR and ARR must be equal in every month, for any seeds of either engine.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray
from scipy import optimize, stats

import simulator
from simulator.api import Engine
from simulator.runner.ensemble import Ensemble
from simulator.runner.executors import Executor, LocalExecutor
from simulator.scenario.loading import load_scenario
from simulator.scenario.models import PaidBudgetChange, Scenario

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = sorted((ROOT / "scenarios").glob("*.toml"))
DATA = Path(__file__).resolve().parent / "data" / "equivalence"

METRICS = ("users", "paying_accounts", "mrr", "nrr_12m", "viral_k", "cac_payback_months")
"""Result.summary keys compared: users, paying accounts and MRR at the horizon, NRR (12 m),
viral K and formula CAC payback."""
TESTS_PER_METRIC = 3  # KS, Welch, Fisher on the share undefined
FAMILY_LEVEL = 0.01
FAMILY_SIZE = len(SCENARIOS) * len(METRICS) * TESTS_PER_METRIC
PER_TEST_LEVEL = FAMILY_LEVEL / FAMILY_SIZE
"""Bonferroni: a test rejects below this p-value (0.01 / 144)."""

N_REPS = 50
"""Replications per engine and bundled scenario in CI (power: module docstring)."""
TEETH_REPS = 25
"""Replications per arm on the perturbation scenario (power: module docstring)."""
DETECTABLE_D = 1.01
"""Standardized difference Welch's test detects with 80% power at N_REPS (module docstring)."""
TEETH_D = 2.2
"""A conservative effect of either perturbation on paying accounts of teeth.toml (measured:
d ≈ 2.9 ± 0.35)."""

CI_MONTHS = 18
CI_SCALE = 0.05
MIN_DEFINED_SHARE = 0.8  # a metric the reference rarely defines would make a weak test

Samples = Mapping[str, NDArray[np.float64]]


# ---------------------------------------------------------------------------------------------
# Arms: an engine, and optionally a transform of the scenario it is given
# ---------------------------------------------------------------------------------------------
def _unchanged(scenario: Scenario) -> Scenario:
    return scenario


@dataclass(frozen=True)
class Arm:
    """One side of a comparison: an engine run on (a transform of) the scenario.

    A transform stands in for a broken engine: the fast engine on a scenario with 10% more
    churn behaves like a fast engine whose churn is 10% too high, and goes through exactly
    the same replication and comparison code as the real engines."""

    name: str
    engine: Engine
    transform: Callable[[Scenario], Scenario] = field(default=_unchanged)

    def prepare(self, scenario: Scenario) -> Scenario:
        """The scenario this arm simulates."""
        return self.transform(scenario)


def _revalidate(scenario: Scenario, edit: Callable[[dict[str, Any]], None]) -> Scenario:
    data = scenario.model_dump()
    edit(data)
    return Scenario.model_validate(data)


def churn_scaled(factor: float) -> Callable[[Scenario], Scenario]:
    """Mean monthly paid churn α/(α+β) × factor, keeping α+β (the spread of churn between
    accounts) unchanged, in the scenario and in every segment that overrides churn."""

    def transform(scenario: Scenario) -> Scenario:
        def scale(churn: dict[str, Any]) -> None:
            total = churn["alpha"] + churn["beta"]
            churn["alpha"] *= factor
            churn["beta"] = total - churn["alpha"]
            assert churn["beta"] > 0, "churn factor too large for this Beta"

        def edit(data: dict[str, Any]) -> None:
            scale(data["churn"])
            for segment in data["segments"].values():
                if segment["churn"] is not None:
                    scale(segment["churn"])

        return _revalidate(scenario, edit)

    return transform


def activation_scaled(factor: float) -> Callable[[Scenario], Scenario]:
    """Every onboarding flow's activation probability × factor."""

    def transform(scenario: Scenario) -> Scenario:
        def edit(data: dict[str, Any]) -> None:
            for flow in data["onboarding"].values():
                flow["activation_probability"] *= factor

        return _revalidate(scenario, edit)

    return transform


REFERENCE = Arm("simpy", "simpy")
FAST = Arm("fast", "fast")
FAST_MORE_CHURN = Arm("fast, paid churn +10%", "fast", churn_scaled(1.1))
FAST_LESS_ACTIVATION = Arm("fast, activation -10%", "fast", activation_scaled(0.9))


def seed_root(arm: Arm, label: str) -> int:
    """The seed root of `arm`'s replications of scenario `label`: distinct for every arm and
    scenario, so no two samples share random numbers."""
    return zlib.crc32(f"{arm.name}|{label}".encode())


# ---------------------------------------------------------------------------------------------
# Replications and the comparison
# ---------------------------------------------------------------------------------------------
class Replications:
    """Runs arms on scenarios and keeps the ensembles, so that a reference sample is simulated
    once and compared with several candidates."""

    def __init__(self, executor: Executor | None) -> None:
        self.executor = executor
        self._done: dict[tuple[str, str, int], Ensemble] = {}

    def ensemble(self, arm: Arm, scenario: Scenario, label: str, reps: int) -> Ensemble:
        """`reps` replications of `arm` on `scenario` (named `label` in seeds and caches)."""
        key = (arm.name, label, reps)
        if key not in self._done:
            self._done[key] = simulator.run_many(
                arm.prepare(scenario),
                reps=reps,
                seed=seed_root(arm, label),
                executor=self.executor,
                engine=arm.engine,
            )
        return self._done[key]


@dataclass(frozen=True)
class MetricComparison:
    """The three tests of one metric between two samples (p-values NaN where untestable)."""

    scenario: str
    metric: str
    n: tuple[int, int]
    defined: tuple[int, int]
    mean: tuple[float, float]
    sd: tuple[float, float]
    ks_p: float
    welch_p: float
    undefined_p: float

    @property
    def p_values(self) -> dict[str, float]:
        return {"ks": self.ks_p, "welch": self.welch_p, "undefined_share": self.undefined_p}

    def significant(self, level: float = PER_TEST_LEVEL) -> bool:
        """Whether any of the three tests rejects at `level`."""
        return any(p < level for p in self.p_values.values())

    def row(self) -> str:
        tests = "  ".join(f"{name} p={p:.2e}" for name, p in self.p_values.items())
        return (
            f"{self.scenario:28} {self.metric:20} defined {self.defined[0]}/{self.n[0]} vs "
            f"{self.defined[1]}/{self.n[1]}  mean {self.mean[0]:.5g} vs {self.mean[1]:.5g}  {tests}"
        )

    def to_json(self, level: float = PER_TEST_LEVEL) -> dict[str, Any]:
        """n, defined, means, p-values and pass at `level` (NaN as null)."""

        def number(x: float) -> float | None:
            return None if math.isnan(x) else x

        return {
            "n": list(self.n),
            "defined": list(self.defined),
            "mean": [number(m) for m in self.mean],
            "sd": [number(m) for m in self.sd],
            "p": {name: number(p) for name, p in self.p_values.items()},
            "pass": not self.significant(level),
        }


def _welch_p(x: NDArray[np.float64], y: NDArray[np.float64]) -> float:
    if x.var() == 0 and y.var() == 0:
        # Both constant (K with invites off): the t statistic is 0/0, the answer is not.
        return 1.0 if x[0] == y[0] else 0.0
    return float(stats.ttest_ind(x, y, equal_var=False).pvalue)


def _mean(x: NDArray[np.float64]) -> float:
    return float(x.mean()) if len(x) else math.nan


def _sd(x: NDArray[np.float64]) -> float:
    return float(x.std(ddof=1)) if len(x) >= 2 else math.nan


def compare_metric(scenario: str, metric: str, a: NDArray[np.float64], b: NDArray[np.float64]) -> MetricComparison:
    """KS and Welch on the defined values of two samples, Fisher on how many are defined."""
    x, y = a[~np.isnan(a)], b[~np.isnan(b)]
    ks_p = welch_p = math.nan
    if len(x) >= 2 and len(y) >= 2:
        ks_p = float(stats.ks_2samp(x, y).pvalue)
        welch_p = _welch_p(x, y)
    table = [[len(a) - len(x), len(x)], [len(b) - len(y), len(y)]]
    undefined_p = float(stats.fisher_exact(table).pvalue)
    return MetricComparison(
        scenario=scenario,
        metric=metric,
        n=(len(a), len(b)),
        defined=(len(x), len(y)),
        mean=(_mean(x), _mean(y)),
        sd=(_sd(x), _sd(y)),
        ks_p=ks_p,
        welch_p=welch_p,
        undefined_p=undefined_p,
    )


def compare_samples(scenario: str, reference: Samples, candidate: Samples) -> list[MetricComparison]:
    """Every metric of METRICS compared between two samples of replications."""
    return [compare_metric(scenario, m, reference[m], candidate[m]) for m in METRICS]


def compare_arms(
    replications: Replications, scenario: Scenario, label: str, reference: Arm, candidate: Arm, reps: int
) -> tuple[list[MetricComparison], Ensemble, Ensemble]:
    """The equivalence procedure: `reps` independent replications of each arm, then every
    metric compared. Returns the comparisons and both ensembles."""
    ref = replications.ensemble(reference, scenario, label, reps)
    cand = replications.ensemble(candidate, scenario, label, reps)
    return compare_samples(label, ref.kpi_samples, cand.kpi_samples), ref, cand


def rejected(comparisons: Sequence[MetricComparison]) -> list[MetricComparison]:
    """The comparisons in which some test rejects at the per-test level."""
    return [c for c in comparisons if c.significant()]


# ---------------------------------------------------------------------------------------------
# Power (used in the docstring's argument and checked below)
# ---------------------------------------------------------------------------------------------
def welch_power(d: float, n: int, level: float) -> float:
    """Power of the two-sided two-sample t-test with n per group against a standardized
    difference d (noncentral t; Welch's test with equal n and spreads is this test)."""
    df = 2 * n - 2
    ncp = d * math.sqrt(n / 2)
    critical = float(stats.t.isf(level / 2, df))
    lower = float(stats.nct.cdf(-critical, df, ncp))
    return float(stats.nct.sf(critical, df, ncp)) + (0.0 if math.isnan(lower) else lower)


def detectable_difference(n: int, level: float, power: float = 0.8) -> float:
    """The standardized difference detected with `power` by the t-test at `level`, n per group."""
    high = 2.0
    while welch_power(high, n, level) < power:  # few replications: a large difference
        high *= 2
    return float(optimize.brentq(lambda d: welch_power(d, n, level) - power, 1e-3, high))


# ---------------------------------------------------------------------------------------------
# Scenarios
# ---------------------------------------------------------------------------------------------
def shrunk(path: Path, months: int = CI_MONTHS, scale: float = CI_SCALE) -> Scenario:
    """A bundled scenario over `months` with every volume scaled by `scale` (see docstring)."""
    full = load_scenario(path)
    paid = full.acquisition.paid
    overrides: dict[str, Any] = {
        "simulation.months": months,
        "market.size": full.market.size * scale,
        "acquisition.paid.monthly_budget": paid.monthly_budget * scale,
        "acquisition.organic.signups_per_month": full.acquisition.organic.signups_per_month * scale,
    }
    if paid.saturation_budget is not None:
        overrides["acquisition.paid.saturation_budget"] = paid.saturation_budget * scale
    for i, event in enumerate(full.timeline):
        if isinstance(event, PaidBudgetChange) and event.monthly_budget is not None:
            overrides[f"timeline.{i}.monthly_budget"] = event.monthly_budget * scale
    return load_scenario(path, overrides)


def mechanisms(scenario: Scenario) -> list[str]:
    """Monthly series that must be non-zero over the horizon, given what the scenario uses."""
    acq = scenario.acquisition
    series = ["signups_organic", "new_paying_accounts", "mrr_churned"]
    if acq.paid.monthly_budget > 0:
        series.append("signups_paid")
    if acq.word_of_mouth.imitation_rate > 0:
        series.append("signups_word_of_mouth")
    if scenario.virality.invites_per_user > 0 and scenario.virality.acceptance_rate > 0:
        series.append("signups_viral")
    if scenario.expansion.seat_add_rate > 0:
        series.append("mrr_expansion")
    if scenario.monetization.model in ("freemium", "reverse_trial") and scenario.churn.downgrade_to_free_share > 0:
        series.append("mrr_reactivation")
    return series


def missing_mechanisms(scenario: Scenario, ensemble: Ensemble) -> list[str]:
    """Mechanisms that happen in no replication of `ensemble`.

    One is enough: reactivation (paid, then free, then paid again) is rare in 18 months, in
    15–45% of SimPy replications of the shrunk freemium scenarios, so a correct engine misses
    it in all 50 with probability 0.85^50 ≈ 0.03% at most; an engine without it always fails."""
    return [name for name in mechanisms(scenario) if not ensemble.monthly_samples[name].sum(axis=1).any()]


# ---------------------------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def replications() -> Iterator[Replications]:
    with LocalExecutor(2) as pool:
        yield Replications(pool)


def test_replication_count_has_the_stated_power() -> None:
    assert FAMILY_SIZE == 8 * 6 * 3
    assert detectable_difference(N_REPS, PER_TEST_LEVEL) <= DETECTABLE_D
    assert welch_power(TEETH_D, TEETH_REPS, PER_TEST_LEVEL) > 0.999


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_engines_agree_in_distribution(replications: Replications, path: Path) -> None:
    scenario = shrunk(path)
    for event in scenario.timeline:  # the intervention must happen, with months left to act
        assert event.month <= CI_MONTHS - 6, event
    comparisons, ref, fast = compare_arms(replications, scenario, path.stem, REFERENCE, FAST, N_REPS)

    for arm, ensemble in ((REFERENCE, ref), (FAST, fast)):
        assert not missing_mechanisms(scenario, ensemble), (arm.name, missing_mechanisms(scenario, ensemble))
    for c in comparisons:
        assert c.defined[0] >= MIN_DEFINED_SHARE * c.n[0], f"shrunk scenario rarely defines {c.metric}: {c.row()}"
    failures = rejected(comparisons)
    assert not failures, "\n".join(c.row() for c in failures)


@pytest.mark.parametrize("broken", [FAST_MORE_CHURN, FAST_LESS_ACTIVATION], ids=["churn", "activation"])
def test_the_procedure_detects_a_perturbed_engine(replications: Replications, broken: Arm) -> None:
    scenario = load_scenario(DATA / "teeth.toml")
    control, _, _ = compare_arms(replications, scenario, "teeth", REFERENCE, FAST, TEETH_REPS)
    assert not rejected(control), "\n".join(c.row() for c in rejected(control))
    comparisons, _, _ = compare_arms(replications, scenario, "teeth", REFERENCE, broken, TEETH_REPS)
    report = "\n".join(c.row() for c in comparisons)
    accounts = {c.metric: c for c in rejected(comparisons)}.get("paying_accounts")
    assert accounts is not None, report  # the test the power argument is about
    assert accounts.mean[1] < accounts.mean[0], report


def test_engines_agree_exactly_without_randomness() -> None:
    scenario = load_scenario(DATA / "deterministic.toml")
    engines: tuple[Engine, ...] = ("simpy", "fast")
    runs = {
        (engine, seed): simulator.run(scenario, seed=seed, engine=engine)
        for engine in engines
        for seed in (1, 2, 987_654_321)
    }
    reference = runs["simpy", 1].monthly
    assert reference["paying_accounts"][-1] > 2000  # something happened
    assert np.diff(reference["mrr"]).min() > 0
    for (engine, seed), result in runs.items():
        for name in ("active_users", "paying_accounts", "mrr", "arr"):
            np.testing.assert_array_equal(
                result.monthly[name], reference[name], err_msg=f"{engine}, seed {seed}: {name}"
            )
        assert result.summary["arr"] == runs["simpy", 1].summary["arr"]
