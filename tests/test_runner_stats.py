"""Spreads and target probabilities over Monte Carlo replications (simulator/runner/stats.py).

Every reported median, P10–P90 band, standard error and P(target) comes from these few
functions, so they are checked against numbers worked by hand and against numpy computed
independently (np.quantile / np.nanquantile, np.nanmean, np.nanstd), including the rules for
undefined (NaN) replications: left out of a spread and counted out of `n`, but kept in the
denominator of a probability as "not met". A hypothesis property test covers random samples.
"""

from __future__ import annotations

import math
import operator
import warnings
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.runner.stats import (
    STATISTICS,
    Spread,
    Target,
    TargetError,
    parse_target,
    probability,
    spread,
    spread_by_month,
)

NAN = math.nan
PY_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
}


def _same(actual: float, expected: float, rel: float = 1e-12, abs_: float = 0.0) -> bool:
    """Equal within tolerance, NaN equal to NaN."""
    if math.isnan(expected):
        return math.isnan(actual)
    return math.isclose(actual, expected, rel_tol=rel, abs_tol=abs_)


# --- spread: by hand -------------------------------------------------------------------------


def test_spread_of_one_to_ten_worked_by_hand() -> None:
    # Linear interpolation between order statistics x(1) … x(10): the q-quantile sits at
    # (n − 1)·q = 9q from the first. 9·0.1 = 0.9 → 1 + 0.9; 9·0.5 = 4.5 → 5 + 0.5; 9·0.9 = 8.1 → 9 + 0.1.
    s = spread(list(range(1, 11)))
    assert s.p10 == pytest.approx(1.9, abs=1e-12)
    assert s.p50 == pytest.approx(5.5, abs=1e-12)
    assert s.p90 == pytest.approx(9.1, abs=1e-12)
    assert s.mean == pytest.approx(5.5, abs=1e-12)
    # Σ(x − 5.5)² = 2·(0.5² + 1.5² + 2.5² + 3.5² + 4.5²) = 82.5; s² = 82.5 / 9; stderr = √(s² / 10).
    assert s.stderr == pytest.approx(math.sqrt(82.5 / 9 / 10), rel=1e-12)
    assert s.n == 10


def test_spread_of_an_unsorted_sample_with_nans_worked_by_hand() -> None:
    # Non-NaN values 4, 1, 3, 2 → sorted 1 2 3 4; (n − 1)·q = 0.3, 1.5, 2.7.
    s = spread([NAN, 4.0, 1.0, NAN, 3.0, 2.0])
    assert (s.p10, s.p50, s.p90) == pytest.approx((1.3, 2.5, 3.7), abs=1e-12)
    assert s.mean == pytest.approx(2.5, abs=1e-12)
    # Σ(x − 2.5)² = 5; s² = 5/3; stderr = √(5/3 / 4).
    assert s.stderr == pytest.approx(math.sqrt(5 / 3 / 4), rel=1e-12)
    assert s.n == 4  # the two NaN replications are counted out


def test_spread_of_two_values_worked_by_hand() -> None:
    s = spread([10.0, 20.0])
    assert (s.p10, s.p50, s.p90) == pytest.approx((11.0, 15.0, 19.0), abs=1e-12)
    # s = |20 − 10| / √2; stderr = s / √2 = 5.
    assert s.stderr == pytest.approx(5.0, rel=1e-12)
    assert s.n == 2


def test_spread_of_one_value_has_no_standard_error() -> None:
    s = spread([42.0, NAN])
    assert (s.p10, s.p50, s.p90, s.mean) == (42.0, 42.0, 42.0, 42.0)
    assert math.isnan(s.stderr)
    assert s.n == 1


@pytest.mark.parametrize("values", [[NAN, NAN, NAN], [], np.full(5, np.nan)], ids=["all-nan", "empty", "array"])
def test_spread_with_no_defined_value_is_all_nan_with_n_zero(values: list[float]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "mean of empty slice" noise either
        s = spread(values)
    assert s.n == 0
    assert all(math.isnan(getattr(s, name)) for name in ("p10", "p50", "p90", "mean", "stderr"))


def test_spread_as_dict_lists_every_statistic_in_order() -> None:
    s = spread([1.0, 2.0, 3.0])
    assert list(s.as_dict()) == ["p10", "p50", "p90", "mean", "stderr", "n"] == list(STATISTICS)
    assert s.as_dict()["p50"] == 2.0
    assert s.as_dict()["n"] == 3


# --- spread: against numpy -------------------------------------------------------------------


def _numpy_spread(values: np.ndarray) -> tuple[float, float, float, float, float, int]:
    """p10, p50, p90, mean, stderr and n computed straight from numpy, NaNs dropped."""
    kept = values[~np.isnan(values)]
    n = kept.size
    p10, p50, p90 = (float(np.quantile(kept, q)) for q in (0.1, 0.5, 0.9))
    stderr = float(np.std(kept, ddof=1)) / math.sqrt(n) if n > 1 else NAN
    return p10, p50, p90, float(np.mean(kept)), stderr, n


@pytest.mark.parametrize(
    "values",
    [
        np.random.default_rng(1).normal(100.0, 15.0, 200),
        np.random.default_rng(2).lognormal(10.0, 1.5, 37),
        np.array([3.0, 3.0, 3.0, 1.0, 1.0, 7.0, 7.0, 7.0, 7.0]),  # ties
        np.array([-5.0, 2.5]),
        np.array([0.1, NAN, 0.7, 0.2, NAN, NAN, 0.9, 0.05, 0.3]),
    ],
    ids=["normal-200", "lognormal-37", "ties", "two", "with-nans"],
)
def test_spread_matches_numpy(values: np.ndarray) -> None:
    s = spread(values)
    expected = _numpy_spread(values)
    actual = (s.p10, s.p50, s.p90, s.mean, s.stderr, s.n)
    assert all(_same(a, e) for a, e in zip(actual[:5], expected[:5], strict=True)), (actual, expected)
    assert s.n == expected[5]


def test_spread_percentiles_are_numpys_default_linear_method() -> None:
    # On a skewed sample the methods disagree, so this tells the default from e.g. 'nearest' or 'weibull'.
    values = np.array([1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0])
    s = spread(values)
    assert s.p10 == pytest.approx(np.quantile(values, 0.1, method="linear"), abs=0)
    assert s.p10 != pytest.approx(np.quantile(values, 0.1, method="weibull"))
    assert s.p90 == pytest.approx(np.quantile(values, 0.9, method="linear"), abs=0)
    assert s.p90 != pytest.approx(np.quantile(values, 0.9, method="nearest"))


def test_spread_by_month_is_the_column_wise_spread() -> None:
    rng = np.random.default_rng(7)
    samples = rng.normal(1000.0, 200.0, size=(30, 6))  # 30 replications × 6 months
    samples[[2, 5, 11], 1] = np.nan  # month 1: three undefined replications
    samples[:, 3] = np.nan  # month 3: undefined everywhere
    samples[1:, 4] = np.nan  # month 4: a single defined replication
    by_month = spread_by_month(samples)
    assert list(by_month) == list(STATISTICS)
    assert all(by_month[name].shape == (6,) for name in STATISTICS)
    for m in range(6):
        column = spread(samples[:, m])
        for name in STATISTICS:
            assert _same(float(by_month[name][m]), float(getattr(column, name)), rel=0), (m, name)
    # …and independently of spread(): numpy's NaN-aware reductions, column by column.
    defined = [0, 1, 2, 5]
    np.testing.assert_allclose(by_month["p10"][defined], np.nanquantile(samples[:, defined], 0.1, axis=0), rtol=1e-12)
    np.testing.assert_allclose(by_month["p50"][defined], np.nanmedian(samples[:, defined], axis=0), rtol=1e-12)
    np.testing.assert_allclose(by_month["p90"][defined], np.nanquantile(samples[:, defined], 0.9, axis=0), rtol=1e-12)
    np.testing.assert_allclose(by_month["mean"][defined], np.nanmean(samples[:, defined], axis=0), rtol=1e-12)
    counts = (~np.isnan(samples[:, defined])).sum(axis=0)
    np.testing.assert_allclose(
        by_month["stderr"][defined], np.nanstd(samples[:, defined], axis=0, ddof=1) / np.sqrt(counts), rtol=1e-12
    )
    np.testing.assert_array_equal(by_month["n"], [30, 27, 30, 0, 1, 30])
    assert np.isnan(by_month["p50"][3]) and np.isnan(by_month["stderr"][3])
    assert by_month["p50"][4] == samples[0, 4] and np.isnan(by_month["stderr"][4])


# --- targets: parsing ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key", "op", "threshold"),
    [
        ("nrr_12m>=1.10", "nrr_12m", ">=", 1.10),
        ("grr_12m<=0.9", "grr_12m", "<=", 0.9),
        ("paying_accounts>250", "paying_accounts", ">", 250.0),
        ("cac_payback_months<18", "cac_payback_months", "<", 18.0),
        ("  nrr_12m   >=   1.1  ", "nrr_12m", ">=", 1.1),
        ("\tmrr >= 5\n", "mrr", ">=", 5.0),
        ("margin>-0.25", "margin", ">", -0.25),
        ("margin>=+3", "margin", ">=", 3.0),
        ("mrr>=1e5", "mrr", ">=", 100_000.0),
        ("mrr<2.5E+6", "mrr", "<", 2_500_000.0),
        ("churn<=1.5e-3", "churn", "<=", 0.0015),
        ("share>.5", "share", ">", 0.5),
        ("share<5.", "share", "<", 5.0),
        ("mrr@m24>=100000", "mrr@m24", ">=", 100_000.0),
        ("_private_kpi>0", "_private_kpi", ">", 0.0),
    ],
)
def test_parse_target(text: str, key: str, op: str, threshold: float) -> None:
    assert parse_target(text) == Target(key, op, threshold)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "nrr_12m",
        "nrr_12m>=",
        ">=1.1",
        "nrr_12m=>1.1",
        "nrr_12m==1.1",
        "nrr_12m=1.1",
        "nrr_12m!=1.1",
        "nrr_12m>=abc",
        "nrr_12m>=1.1.1",
        "nrr_12m>=1 2",
        "nrr_12m>=nan",
        "nrr_12m>=inf",
        "nrr_12m>=10%",
        "nrr_12m>=1e",
        "1nrr>=1",
        "nrr 12m>=1",
        "nrr-12m>=1",
        "nrr_12m>>1",
    ],
)
def test_malformed_targets_are_rejected(text: str) -> None:
    with pytest.raises(TargetError, match="KEY>=NUMBER"):
        parse_target(text)


def test_target_error_is_a_value_error() -> None:
    assert issubclass(TargetError, ValueError)


KNOWN = {"nrr_12m": 1.0, "grr_12m": 1.0, "mrr": 1.0, "mrr@m24": 1.0, "paying_accounts": 1.0}


def test_known_keys_accept_a_listed_kpi() -> None:
    assert parse_target("mrr@m24>=100000", KNOWN) == Target("mrr@m24", ">=", 100_000.0)


@pytest.mark.parametrize(
    ("text", "suggestion"),
    [
        ("nrr_12>=1.1", "nrr_12m"),
        ("nrr>=1.1", "nrr_12m"),
        ("grr12m<=1", "grr_12m"),
        ("paying_acounts>3", "paying_accounts"),
    ],
)
def test_unknown_kpi_gets_a_did_you_mean(text: str, suggestion: str) -> None:
    with pytest.raises(TargetError) as info:
        parse_target(text, KNOWN)
    message = str(info.value)
    assert "did you mean" in message
    assert repr(suggestion) in message
    assert text.split(">")[0].split("<")[0] in message  # names the bad key


def test_unknown_kpi_with_no_near_match_lists_the_known_ones() -> None:
    with pytest.raises(TargetError) as info:
        parse_target("zzz>=1", KNOWN)
    message = str(info.value)
    assert "did you mean" not in message
    assert all(k in message for k in KNOWN)


@pytest.mark.parametrize(
    "text", ["mrr@m24>=100000", "nrr_12m>=1.1", "mrr>=1234567", "share>0.123456789", "cost<-2.5e-07"]
)
def test_a_target_prints_as_text_that_parses_back_to_it(text: str) -> None:
    # str(target) is what result.json and targets.csv record; it must keep the threshold.
    target = parse_target(text)
    assert parse_target(str(target)) == target, str(target)


# --- targets: probabilities ------------------------------------------------------------------

SAMPLE = [0.9, 1.1, 1.1, 1.2, NAN, 1.0, 1.3, NAN]
"""8 replications, two undefined; two values exactly at 1.1 (ties)."""


@pytest.mark.parametrize(
    ("op", "threshold", "met"),
    [
        (">=", 1.1, 4),  # 1.1, 1.1, 1.2, 1.3 — ties count
        (">", 1.1, 2),  # 1.2, 1.3 — ties do not
        ("<=", 1.1, 4),  # 0.9, 1.1, 1.1, 1.0
        ("<", 1.1, 2),  # 0.9, 1.0
        (">=", 0.0, 6),  # every defined value, never the NaNs
        ("<", 0.0, 0),
        (">", 1.3, 0),
        (">=", 1.3, 1),
    ],
)
def test_probability_against_a_hand_count(op: str, threshold: float, met: int) -> None:
    outcome = probability(Target("nrr_12m", op, threshold), SAMPLE)
    assert outcome.met == met
    assert outcome.n == 8  # NaN replications stay in the denominator
    assert outcome.probability == pytest.approx(met / 8, abs=1e-15)
    p = met / 8
    assert outcome.stderr == pytest.approx(math.sqrt(p * (1 - p) / 8), abs=1e-15)


def test_probability_ties_parsed_from_text() -> None:
    values = [100_000.0, 100_000.0, 99_999.99, 100_000.01]
    assert probability(parse_target("mrr@m24>=100000"), values).met == 3
    assert probability(parse_target("mrr@m24>100000"), values).met == 1
    assert probability(parse_target("mrr@m24<=1e5"), values).met == 3
    assert probability(parse_target("mrr@m24<1e5"), values).met == 1


def test_nan_is_not_met_under_any_operator() -> None:
    for op in PY_OPERATORS:
        outcome = probability(Target("k", op, 0.0), [NAN, NAN, NAN])
        assert (outcome.met, outcome.n, outcome.probability, outcome.stderr) == (0, 3, 0.0, 0.0)
        np.testing.assert_array_equal(Target("k", op, 0.0).met([NAN, 1.0, -1.0]), [False, op[0] == ">", op[0] == "<"])


def test_probability_stderr_is_the_binomial_standard_error() -> None:
    values = np.arange(40, dtype=float)  # 0 … 39
    outcome = probability(Target("k", "<", 10.0), values)  # 0 … 9 → 10 of 40
    assert outcome.probability == 0.25
    assert outcome.stderr == pytest.approx(math.sqrt(0.25 * 0.75 / 40), rel=1e-12)
    everyone = probability(Target("k", ">=", 0.0), values)
    assert (everyone.probability, everyone.stderr) == (1.0, 0.0)


def test_probability_of_no_replications_is_undefined() -> None:
    outcome = probability(Target("k", ">=", 1.0), [])
    assert outcome.n == 0 and outcome.met == 0
    assert math.isnan(outcome.probability) and math.isnan(outcome.stderr)


def test_outcome_as_dict() -> None:
    outcome = probability(Target("nrr_12m", ">=", 1.1), SAMPLE)
    assert outcome.as_dict() == {
        "target": "nrr_12m>=1.1",
        "probability": 0.5,
        "stderr": pytest.approx(math.sqrt(0.25 / 8)),
        "met": 4,
        "n": 8,
    }


# --- properties ------------------------------------------------------------------------------

_values = st.lists(
    st.one_of(
        st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False),
        st.sampled_from([-1.0, 0.0, 1.0, 2.5]),  # repeated values, and ties with the thresholds below
        st.just(NAN),
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(_values)
def test_spread_matches_numpys_nan_aware_reductions(values: list[float]) -> None:
    data = np.array(values, dtype=float)
    s = spread(values)
    n = int(np.count_nonzero(~np.isnan(data)))
    assert s.n == n
    if n == 0:
        assert all(math.isnan(getattr(s, k)) for k in ("p10", "p50", "p90", "mean", "stderr"))
        return
    scale = max(1.0, float(np.nanmax(np.abs(data))))
    for name, q in (("p10", 0.1), ("p50", 0.5), ("p90", 0.9)):
        assert _same(getattr(s, name), float(np.nanquantile(data, q)), rel=1e-12, abs_=1e-12 * scale), name
    assert _same(s.mean, float(np.nanmean(data)), rel=1e-9, abs_=1e-9 * scale)
    if n == 1:
        assert math.isnan(s.stderr)
    else:
        expected = float(np.nanstd(data, ddof=1)) / math.sqrt(n)
        assert _same(s.stderr, expected, rel=1e-9, abs_=1e-9 * scale)
    assert min(v for v in values if not math.isnan(v)) <= s.p10
    assert s.p90 <= max(v for v in values if not math.isnan(v))


@settings(max_examples=150, deadline=None)
@given(
    _values,
    st.sampled_from(sorted(PY_OPERATORS)),
    st.one_of(st.sampled_from([-1.0, 0.0, 1.0, 2.5]), st.floats(min_value=-1e6, max_value=1e6)),
)
def test_probability_is_the_share_of_replications_meeting_the_condition(
    values: list[float], op: str, threshold: float
) -> None:
    outcome = probability(Target("kpi", op, threshold), values)
    assert outcome.n == len(values)
    # With numpy: the condition, NaN → False, averaged over every replication.
    data = np.array(values, dtype=float)
    ufunc = {">=": np.greater_equal, "<=": np.less_equal, ">": np.greater, "<": np.less}[op]
    with np.errstate(invalid="ignore"):
        condition = np.where(np.isnan(data), False, ufunc(data, threshold))
    # With plain Python, one replication at a time.
    hits = sum(1 for v in values if not math.isnan(v) and PY_OPERATORS[op](v, threshold))
    assert outcome.met == hits == int(condition.sum())
    if not values:
        assert math.isnan(outcome.probability)
        return
    assert outcome.probability == pytest.approx(float(np.mean(condition)), abs=1e-15)
    assert outcome.probability == pytest.approx(hits / len(values), abs=1e-15)
    p = hits / len(values)
    assert outcome.stderr == pytest.approx(math.sqrt(p * (1 - p) / len(values)), abs=1e-15)


def test_spread_is_a_frozen_value() -> None:
    s = Spread(1.0, 2.0, 3.0, 2.0, 0.5, 3)
    with pytest.raises(AttributeError):
        s.p50 = 5.0  # type: ignore[misc]
