"""Monte Carlo replications of one scenario, and what they say together: every KPI and
monthly series as median, P10–P90, mean and standard error, and probabilities of targets."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from simulator.files import json_number, parquet_available, write_csv_table, write_json, write_parquet
from simulator.runner.digest import RunDigest
from simulator.runner.stats import STATISTICS, Spread, Target, TargetOutcome, probability, spread, spread_by_month
from simulator.scenario.models import Scenario


@dataclass(frozen=True)
class Ensemble:
    """Replications of one scenario, in replication order (replication i used `seeds[i]`)."""

    scenario: Scenario
    seed: int
    """The scenario seed the replication seeds were spawned from."""
    runs: tuple[RunDigest, ...] = field(repr=False)

    @property
    def name(self) -> str:
        return self.scenario.name

    @property
    def reps(self) -> int:
        return len(self.runs)

    @property
    def seeds(self) -> tuple[int, ...]:
        return tuple(run.seed for run in self.runs)

    @property
    def months(self) -> int:
        return self.scenario.simulation.months

    @cached_property
    def kpi_samples(self) -> dict[str, NDArray[np.float64]]:
        """Each KPI's value in every replication (summary keys, then 'key@checkpoint' keys)."""
        keys = self.runs[0].kpis
        return {k: np.array([run.kpis[k] for run in self.runs], dtype=float) for k in keys}

    @cached_property
    def kpis(self) -> dict[str, Spread]:
        """Each KPI's spread over the replications."""
        return {k: spread(v) for k, v in self.kpi_samples.items()}

    @cached_property
    def monthly_samples(self) -> dict[str, NDArray[np.float64]]:
        """Each monthly series as a (replications × months) array."""
        keys = self.runs[0].monthly
        return {k: np.vstack([run.monthly[k] for run in self.runs]) for k in keys}

    @cached_property
    def monthly(self) -> dict[str, dict[str, NDArray[np.float64]]]:
        """Each monthly series' statistics (p10, p50, p90, mean, stderr, n), month by month."""
        return {k: spread_by_month(v) for k, v in self.monthly_samples.items()}

    def mean_table(self, name: str) -> NDArray[np.float64]:
        """A retention table ('users', 'accounts' or 'revenue') averaged over the replications
        (cells no replication defines stay NaN)."""
        stack = np.stack([run.tables[name] for run in self.runs])
        defined = (~np.isnan(stack)).sum(axis=0)
        total = np.nansum(stack, axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(defined > 0, total / np.maximum(defined, 1), np.nan)

    def probability(self, target: Target) -> TargetOutcome:
        """Share of replications in which `target` is met."""
        if target.key not in self.kpi_samples:
            raise KeyError(target.key)
        return probability(target, self.kpi_samples[target.key])

    def to_json(self, targets: Sequence[Target] = ()) -> dict[str, Any]:
        """A JSON-ready dict: each summary key and checkpoint value becomes {p10, p50, p90,
        mean, stderr, n}; each monthly series {p10: [...], ...}. Undefined values are null."""
        summary: dict[str, Any] = {}
        checkpoints: dict[str, dict[str, Any]] = {}
        for key, value in self.kpis.items():
            name, _, label = key.partition("@")
            entry = _spread_json(value)
            if label:
                checkpoints.setdefault(label, {})[name] = entry
            else:
                summary[key] = entry
        return {
            "scenario": self.name,
            "seed": self.seed,
            "engine": self.scenario.simulation.engine,
            "reps": self.reps,
            "replication_seeds": list(self.seeds),
            "currency": self.scenario.currency,
            "months": self.months,
            "simulated_users": _spread_json(spread([run.simulated_users for run in self.runs])),
            "summary": summary,
            "checkpoints": checkpoints,
            "targets": [_outcome_json(self.probability(t)) for t in targets],
            "monthly": {
                series: {stat: [json_number(x) for x in values] for stat, values in stats.items()}
                for series, stats in self.monthly.items()
            },
        }

    def write(self, directory: Path, targets: Sequence[Target] = ()) -> list[Path]:
        """Write summary.csv, monthly.csv, replications.csv (and targets.csv), result.json,
        and Parquet copies of the tables when pyarrow is installed. No clocks or host names:
        the same replications give the same bytes."""
        directory.mkdir(parents=True, exist_ok=True)
        summary = [[key, *_spread_row(value)] for key, value in self.kpis.items()]
        monthly_header = ["series", "month", *STATISTICS]
        monthly_rows = [
            [series, month, *(stats[s][month] for s in STATISTICS)]
            for series, stats in self.monthly.items()
            for month in range(self.months)
        ]
        rep_header, rep_rows = self.replication_table()
        written = [
            write_csv_table(directory / "summary.csv", ["metric", *STATISTICS], summary),
            write_csv_table(directory / "monthly.csv", monthly_header, monthly_rows),
            write_csv_table(directory / "replications.csv", rep_header, rep_rows),
        ]
        if targets:
            outcomes = [self.probability(t) for t in targets]
            written.append(write_csv_table(directory / "targets.csv", list(_OUTCOME_COLUMNS), _outcome_rows(outcomes)))
        written.append(write_json(directory / "result.json", self.to_json(targets)))
        if parquet_available():
            written.append(write_parquet(directory / "replications.parquet", rep_header, rep_rows))
            written.append(write_parquet(directory / "monthly.parquet", monthly_header, monthly_rows))
        return written

    def replication_table(self) -> tuple[list[str], list[list[Any]]]:
        """One row per replication: its index, seed, simulated users and every KPI."""
        keys = list(self.kpi_samples)
        header = ["replication", "seed", "simulated_users", *keys]
        rows = [[i, run.seed, run.simulated_users, *(run.kpis[k] for k in keys)] for i, run in enumerate(self.runs)]
        return header, rows

    def to_pandas(self) -> Any:
        """The replication table as a pandas DataFrame (needs pandas)."""
        import pandas as pd

        header, rows = self.replication_table()
        return pd.DataFrame(rows, columns=header)

    def monthly_to_pandas(self) -> Any:
        """Monthly statistics in long form (series, month, p10 … n) as a pandas DataFrame."""
        import pandas as pd

        frames = [
            pd.DataFrame({"series": series, "month": np.arange(self.months), **stats})
            for series, stats in self.monthly.items()
        ]
        return pd.concat(frames, ignore_index=True)


_OUTCOME_COLUMNS = ("target", "probability", "stderr", "met", "n")


def _spread_row(value: Spread) -> list[float]:
    return [getattr(value, s) for s in STATISTICS]


def _spread_json(value: Spread) -> dict[str, float | int | None]:
    return {k: json_number(v) for k, v in value.as_dict().items()}


def _outcome_json(outcome: TargetOutcome) -> dict[str, Any]:
    return {k: (v if isinstance(v, str) else json_number(v)) for k, v in outcome.as_dict().items()}


def _outcome_rows(outcomes: Iterable[TargetOutcome]) -> list[list[Any]]:
    return [[str(o.target), o.probability, o.stderr, o.met, o.n] for o in outcomes]
