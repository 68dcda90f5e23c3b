"""How figures are shown to a person: rates as percentages with one decimal, money with
thousands separators and its currency, months with one decimal; every figure has its unit."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from simulator.result import Result

Unit = Literal["users", "accounts", "money", "rate", "months", "ratio", "count"]


@dataclass(frozen=True)
class SummaryRow:
    """One line of a summary table."""

    key: str
    label: str
    value: float
    unit: Unit


def format_value(value: float, unit: Unit, currency: str, signed: bool = False) -> str:
    """`value` as text with its unit; 'n/a' when undefined."""
    if value is None or not math.isfinite(value):
        return "n/a"
    sign = "+" if signed and value > 0 else ""
    if unit == "rate":
        return f"{sign}{value * 100:.1f}{' pp' if signed else '%'}"
    if unit == "money":
        return f"{sign}{value:,.0f} {currency}"
    if unit == "months":
        return f"{sign}{value:.1f} months"
    if unit == "ratio":
        return f"{sign}{value:.2f}×"
    if unit == "count":
        return f"{sign}{value:.2f}"
    return f"{sign}{value:,.0f} {unit}"


def summary_rows(result: Result) -> list[SummaryRow]:
    """The rows of the summary table of one result, in display order."""
    rows: list[SummaryRow] = []
    checkpoints = result.checkpoints()
    horizon = result.ledger.months
    labels = {k: f"month {k[1:]}" for k in checkpoints if k != "horizon"}
    if f"m{horizon}" not in checkpoints:
        labels["horizon"] = f"month {horizon} (horizon)"
    for key, unit, name in (
        ("users", "users", "Active users"),
        ("paying_accounts", "accounts", "Paying accounts"),
        ("mrr", "money", "MRR"),
        ("arr", "money", "ARR"),
    ):
        for point, label in labels.items():
            rows.append(SummaryRow(f"{key}@{point}", f"{name}, {label}", checkpoints[point][key], unit))  # type: ignore[arg-type]
    s = result.summary
    kpis: list[tuple[str, str, Unit]] = [
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
    ]
    rows.extend(SummaryRow(key, label, s[key], unit) for key, label, unit in kpis)
    return rows
