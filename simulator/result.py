"""The result of one run: the ledger and the KPIs and series computed from it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from simulator import metrics
from simulator.files import json_number, write_csv_table
from simulator.ledger import CHANNEL_NAMES, Ledger
from simulator.scenario.models import Scenario

CHECKPOINT_MONTHS = (12, 24, 36)
"""Months (counted from 1, i.e. the end of month index 11, 23, 35) shown besides the horizon."""

SUMMARY_KEYS = (
    "users", "paying_accounts", "mrr", "arr", "nrr_12m", "grr_12m", "cac_payback_months",
    "cac_payback_cohort_months", "ltv", "blended_cac", "ltv_to_cac", "viral_k", "signups_total",
    "activation_rate", "time_to_value_days_median", "time_to_value_days_p90", "conversion_90d",
    "conversion_90d_of_activated", "trial_conversion", "invite_acceptance", "viral_cycle_days_median",
    "logo_churn_monthly", "arpa", "paid_cac",
)  # fmt: skip
"""The keys of `Result.summary`, in order (targets and tables are checked against it before running)."""
CHECKPOINT_KEYS = ("users", "paying_accounts", "mrr", "arr")


def kpi_keys(months: int) -> list[str]:
    """The keys of `Result.kpis` for a horizon of `months`: summary keys, then 'key@checkpoint'."""
    labels = [f"m{m}" for m in CHECKPOINT_MONTHS if m <= months] + ["horizon"]
    return [*SUMMARY_KEYS, *(f"{key}@{label}" for label in labels for key in CHECKPOINT_KEYS)]


@dataclass(frozen=True)
class Result:
    """One replication of one scenario."""

    scenario: Scenario
    seed: int
    ledger: Ledger = field(repr=False)

    @property
    def name(self) -> str:
        """The scenario's name."""
        return self.scenario.name

    @cached_property
    def monthly(self) -> dict[str, NDArray[np.float64]]:
        """Series by name, one value per month (money in the scenario's currency)."""
        ledger = self.ledger
        by_channel = metrics.signups_by_channel(ledger)
        by_state = metrics.active_users_by_state(ledger)
        flows = metrics.mrr_waterfall(ledger)
        mrr = metrics.mrr(ledger)
        series: dict[str, Any] = {
            "month": np.arange(ledger.months),
            "signups": by_channel.sum(axis=0),
            **{f"signups_{name}": by_channel[i] for i, name in enumerate(CHANNEL_NAMES)},
            "active_users": by_state.sum(axis=0),
            "active_free": by_state[0],
            "active_trial": by_state[1],
            "active_paying": by_state[2],
            "paying_accounts": metrics.paying_accounts(ledger),
            "seats": metrics.paid_seats(ledger),
            "mrr": mrr,
            "arr": 12 * mrr,
            "mrr_new": flows.new / 100.0,
            "mrr_expansion": flows.expansion / 100.0,
            "mrr_contraction": flows.contraction / 100.0,
            "mrr_churned": flows.churned / 100.0,
            "mrr_reactivation": flows.reactivation / 100.0,
            "nrr_12m": metrics.nrr_trailing(ledger),
            "grr_12m": metrics.grr_trailing(ledger),
            "nrr_monthly": metrics.nrr_monthly(ledger),
            "logo_churn": metrics.logo_churn_rate(ledger),
            "revenue_churn": metrics.revenue_churn_rate(ledger),
            "arpa": metrics.arpa(ledger),
            "acquisition_spend": metrics.acquisition_spend(ledger),
            "new_paying_accounts": metrics.new_paying_accounts(ledger),
            "blended_cac": metrics.blended_cac(ledger),
            "cac_payback_cohort_months": metrics.cac_payback_by_cohort(ledger),
            "activation_rate_14d": metrics.activation_rate_by_cohort(ledger, within_days=14),
            "viral_k_by_cohort": metrics.virality(ledger).k_by_cohort,
        }
        return {k: np.asarray(v) for k, v in series.items()}

    @cached_property
    def summary(self) -> dict[str, float]:
        """Headline KPIs at the horizon (NaN where undefined)."""
        ledger = self.ledger
        series = self.monthly
        ttv_median, ttv_p90 = metrics.time_to_value_days(ledger)
        conversion, conversion_activated = metrics.conversion_by_cohort(ledger)
        signups = series["signups"]
        viral = metrics.virality(ledger)
        activation = metrics.activation_rate_by_cohort(ledger)
        return {
            "users": float(series["active_users"][-1]),
            "paying_accounts": float(series["paying_accounts"][-1]),
            "mrr": float(series["mrr"][-1]),
            "arr": float(series["arr"][-1]),
            "nrr_12m": float(series["nrr_12m"][-1]),
            "grr_12m": float(series["grr_12m"][-1]),
            "cac_payback_months": metrics.cac_payback_formula(ledger),
            "cac_payback_cohort_months": metrics.cac_payback_cohort_median(ledger),
            "ltv": metrics.ltv_simple(ledger),
            "blended_cac": metrics.blended_cac_total(ledger),
            "ltv_to_cac": metrics.ltv_to_cac(ledger),
            "viral_k": metrics.viral_k(ledger),
            "signups_total": float(signups.sum()),
            "activation_rate": _pooled(activation, signups),
            "time_to_value_days_median": ttv_median,
            "time_to_value_days_p90": ttv_p90,
            "conversion_90d": _pooled(conversion, signups),
            # Weighting each cohort's rate by its denominator pools the counts exactly.
            "conversion_90d_of_activated": _pooled(conversion_activated, np.nan_to_num(activation) * signups),
            "trial_conversion": metrics.trial_conversion(ledger),
            "invite_acceptance": viral.acceptance_rate,
            "viral_cycle_days_median": viral.cycle_time_days_median,
            "logo_churn_monthly": metrics.mean_logo_churn(ledger),
            "arpa": float(series["arpa"][-1]),
            "paid_cac": metrics.paid_cac(ledger),
        }

    def checkpoints(self) -> dict[str, dict[str, float]]:
        """Users, paying accounts, MRR and ARR at months 12, 24, 36 (where inside the horizon)
        and at the horizon, keyed 'm12', 'm24', 'm36', 'horizon'."""
        series = self.monthly
        points = {f"m{m}": m - 1 for m in CHECKPOINT_MONTHS if m <= self.ledger.months}
        points["horizon"] = self.ledger.months - 1
        return {
            label: {key: float(series["active_users" if key == "users" else key][i]) for key in CHECKPOINT_KEYS}
            for label, i in points.items()
        }

    @cached_property
    def kpis(self) -> dict[str, float]:
        """The summary KPIs, then the checkpoint values keyed 'users@m12', 'mrr@horizon', …"""
        flat = dict(self.summary)
        for label, values in self.checkpoints().items():
            flat.update({f"{key}@{label}": value for key, value in values.items()})
        return flat

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict: scenario, seed, currency, months, summary, checkpoints, monthly.
        Undefined values are null."""
        return {
            "scenario": self.name,
            "seed": self.seed,
            "engine": self.scenario.simulation.engine,
            "currency": self.scenario.currency,
            "months": self.ledger.months,
            "simulated_users": self.ledger.users,
            "summary": {k: json_number(v) for k, v in self.summary.items()},
            "checkpoints": {k: {n: json_number(v) for n, v in d.items()} for k, d in self.checkpoints().items()},
            "monthly": {k: [json_number(float(x)) for x in v] for k, v in self.monthly.items()},
        }

    def to_pandas(self) -> Any:
        """The monthly series as a pandas DataFrame indexed by month (needs pandas)."""
        import pandas as pd

        return pd.DataFrame(self.monthly).set_index("month")

    def write_csv(self, directory: Path) -> list[Path]:
        """Write monthly series, summary and cohort tables as CSV files; returns their paths."""
        directory.mkdir(parents=True, exist_ok=True)
        ledger = self.ledger
        logos, revenue = metrics.account_retention(ledger)
        written = [
            _write_table(directory / "monthly.csv", list(self.monthly), np.column_stack(list(self.monthly.values()))),
            write_csv_table(directory / "summary.csv", ["metric", "value"], [[k, v] for k, v in self.summary.items()]),
        ]
        tables = {
            "user_retention.csv": metrics.user_retention(ledger),
            "account_retention.csv": logos,
            "revenue_retention.csv": revenue,
            "mrr_by_payment_cohort.csv": metrics.mrr_by_payment_cohort(ledger) / 100.0,
        }
        for name, table in tables.items():
            header = ["cohort"] + [str(k) for k in range(table.shape[1])]
            rows = np.column_stack([np.arange(table.shape[0]), table])
            written.append(_write_table(directory / name, header, rows))
        return written


def _pooled(rates: NDArray[np.float64], weights: NDArray[Any]) -> float:
    ok = ~np.isnan(rates)
    total = weights[ok].sum()
    return float((rates[ok] * weights[ok]).sum() / total) if total else math.nan


def _write_table(path: Path, header: list[str], rows: NDArray[Any]) -> Path:
    return write_csv_table(path, header, rows.tolist())
