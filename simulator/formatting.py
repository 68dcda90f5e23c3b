"""How figures are shown to a person: rates as percentages with one decimal, money with
thousands separators and its currency, months with one decimal; every figure has its unit.
Where replications exist: the median with the P10–P90 range, never a bare mean."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from simulator.result import CHECKPOINT_MONTHS
from simulator.runner.ensemble import Ensemble
from simulator.runner.stats import Spread, TargetOutcome, spread

Unit = Literal["users", "accounts", "money", "rate", "months", "ratio", "count"]


@dataclass(frozen=True)
class RowSpec:
    """One line of a summary table: which KPI (a key of `Result.kpis`), its label and unit.

    Rows that are values at a month (users, MRR… at a checkpoint; NRR and GRR) also name their
    monthly `series` and `month` (counted from 1), so that runs with different horizons are
    compared at the month the row names, not each at its own horizon."""

    key: str
    label: str
    unit: Unit
    series: str | None = None
    month: int | None = None


_CHECKPOINT_KPIS: tuple[tuple[str, Unit, str], ...] = (
    ("users", "users", "Active users"),
    ("paying_accounts", "accounts", "Paying accounts"),
    ("mrr", "money", "MRR"),
    ("arr", "money", "ARR"),
)
_HEADLINE_KPIS: tuple[tuple[str, str, Unit], ...] = (
    ("nrr_12m", "NRR, trailing 12 months", "rate"),
    ("grr_12m", "GRR, trailing 12 months", "rate"),
    ("cac_payback_months", "CAC payback (formula)", "months"),
    ("cac_payback_cohort_months", "CAC payback (cohort cash, median)", "months"),
    ("blended_cac", "Blended CAC", "money"),
    ("ltv", "LTV (simple)", "money"),
    ("ltv_to_cac", "LTV:CAC", "ratio"),
    ("viral_k", "Viral coefficient K", "count"),
    ("signups_total", "Signups, whole horizon", "users"),
    ("activation_rate", "Activation rate", "rate"),
    ("conversion_90d", "Free→paid within 90 days", "rate"),
    ("logo_churn_monthly", "Logo churn per month", "rate"),
)


def summary_specs(months: int) -> list[RowSpec]:
    """The rows of a summary table for a horizon of `months`, in display order."""
    labels = {f"m{m}": f"month {m}" for m in CHECKPOINT_MONTHS if m <= months}
    if months not in CHECKPOINT_MONTHS:
        labels["horizon"] = f"month {months} (horizon)"
    month_of = {point: months if point == "horizon" else int(point[1:]) for point in labels}
    rows = [
        RowSpec(f"{key}@{point}", f"{name}, {label}", unit, _SERIES.get(key, key), month_of[point])
        for key, unit, name in _CHECKPOINT_KPIS
        for point, label in labels.items()
    ]
    for key, label, unit in _HEADLINE_KPIS:
        at_month = key in ("nrr_12m", "grr_12m")
        rows.append(RowSpec(key, label, unit, key if at_month else None, months if at_month else None))
    return rows


_SERIES = {"users": "active_users"}
"""Monthly series of checkpoint KPIs whose names differ."""


def format_value(value: float, unit: Unit, currency: str, signed: bool = False) -> str:
    """`value` as text with its unit; 'n/a' when undefined."""
    if value is None or not math.isfinite(value):
        return "n/a"
    number = format_number(value, unit, signed)
    if unit == "rate":
        return f"{number}{' pp' if signed else '%'}"
    if unit == "money":
        return f"{number} {currency}"
    if unit in ("ratio", "count"):
        return f"{number}×" if unit == "ratio" else number
    return f"{number} {unit}"


def format_number(value: float, unit: Unit, signed: bool = False) -> str:
    """`value` as a number in `unit`'s precision, without the unit ('n/a' when undefined)."""
    if value is None or not math.isfinite(value):
        return "n/a"
    if unit == "rate":
        text = f"{value * 100:.1f}"
    elif unit == "months":
        text = f"{value:.1f}"
    elif unit in ("ratio", "count"):
        text = f"{value:.2f}"
    else:
        text = f"{value:,.0f}"
    if text.lstrip("-").strip("0.,") == "":
        return text.lstrip("-")  # rounds to zero: no sign ("-0.0 pp" reads like a loss)
    return f"+{text}" if signed and value > 0 else text


def format_spread(value: Spread, unit: Unit, currency: str) -> str:
    """The median with its unit, then the P10–P90 range: '80.1% [76.0 – 84.2]'."""
    if value.n == 0:
        return "n/a"
    low, high = format_number(value.p10, unit), format_number(value.p90, unit)
    return f"{format_value(value.p50, unit, currency)} [{low} – {high}]"


def format_outcome(outcome: TargetOutcome) -> str:
    """'63.0% ± 4.8 pp (63 of 100)': the probability of a target and its standard error."""
    if outcome.n == 0:
        return "n/a"
    return f"{outcome.probability * 100:.1f}% ± {outcome.stderr * 100:.1f} pp ({outcome.met} of {outcome.n})"


def row_value(spec: RowSpec, kpis: dict[str, float], monthly: dict[str, Any]) -> float:
    """The value of `spec`'s row for one run: read at the row's month when it has one."""
    if spec.series is not None and spec.month is not None:
        series = monthly.get(spec.series)
        if series is not None and spec.month <= len(series):
            return float(series[spec.month - 1])
        return math.nan
    return kpis.get(spec.key, math.nan)


def row_spread(spec: RowSpec, ensemble: Ensemble) -> Spread | None:
    """The spread of `spec`'s row over an ensemble's replications, read at the row's month
    when it has one; None when the ensemble does not reach it."""
    if spec.series is not None and spec.month is not None:
        samples = ensemble.monthly_samples.get(spec.series)
        if samples is None or spec.month > samples.shape[1]:
            return None
        return spread(samples[:, spec.month - 1])
    return ensemble.kpis.get(spec.key)
