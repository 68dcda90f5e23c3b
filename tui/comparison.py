"""The comparison table: one column per scenario, one row per KPI, the best value per row
marked and differences against a baseline column. Pure: no widgets, so it is tested and
exported to CSV without a terminal."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from simulator.formatting import RowSpec, format_spread, format_value, row_spread, summary_specs
from simulator.runner.ensemble import Ensemble

Better = Literal["higher", "lower"]

LOWER_IS_BETTER = frozenset({"cac_payback_months", "cac_payback_cohort_months", "blended_cac", "logo_churn_monthly"})
"""KPIs where less is better; for every other row of the table more is better."""


@dataclass(frozen=True)
class Cell:
    """One value of the table: its text, the median it ranks by, whether it is the row's best."""

    text: str
    value: float
    best: bool = False


@dataclass(frozen=True)
class Row:
    spec: RowSpec
    cells: tuple[Cell, ...]


def better(key: str) -> Better:
    """Which direction is better for a KPI key ('mrr@m12' ranks like 'mrr')."""
    return "lower" if key.split("@")[0] in LOWER_IS_BETTER else "higher"


def comparison_rows(columns: Sequence[Ensemble | None], baseline: int = 0) -> list[Row]:
    """The table's rows. A column that is None (still running) shows '…'. With one replication a
    cell is the value and its difference from the baseline column; with more, the median and
    P10–P90. The best median per row is marked when at least two columns have one."""
    done = [c for c in columns if c is not None]
    if not done:
        return []
    months = min(c.months for c in done)
    base = columns[baseline] if 0 <= baseline < len(columns) else None
    rows = []
    for spec in summary_specs(months):
        spreads = [row_spread(spec, c) if c is not None else None for c in columns]
        values = [s.p50 if s is not None else math.nan for s in spreads]
        best = _best(values, better(spec.key))
        base_value = values[baseline] if base is not None else math.nan
        cells = []
        for j, (column, spread) in enumerate(zip(columns, spreads, strict=True)):
            if column is None:
                cells.append(Cell("…", math.nan))
                continue
            currency = column.scenario.currency
            if spread is None or spread.n == 0:
                text = "n/a"
            elif column.reps > 1:
                text = format_spread(spread, spec.unit, currency)
            else:
                text = format_value(spread.p50, spec.unit, currency)
            delta = values[j] - base_value
            if j != baseline and math.isfinite(delta):
                text += f" (Δ {format_value(delta, spec.unit, currency, signed=True)})"
            cells.append(Cell(text, values[j], j in best))
        rows.append(Row(spec, tuple(cells)))
    return rows


def _best(values: Sequence[float], direction: Better) -> set[int]:
    defined = [(v, j) for j, v in enumerate(values) if math.isfinite(v)]
    if len(defined) < 2 or len({v for v, _ in defined}) == 1:
        return set()
    target = max(v for v, _ in defined) if direction == "higher" else min(v for v, _ in defined)
    return {j for v, j in defined if v == target}


def export_rows(names: Sequence[str], columns: Sequence[Ensemble]) -> tuple[list[str], list[list[object]]]:
    """The table for CSV: per scenario its median, P10 and P90 of every row (raw numbers)."""
    header = ["metric", *(f"{name} {stat}" for name in names for stat in ("p50", "p10", "p90"))]
    months = min(c.months for c in columns)
    rows: list[list[object]] = []
    for spec in summary_specs(months):
        row: list[object] = [spec.key]
        for column in columns:
            spread = row_spread(spec, column)
            row.extend([spread.p50, spread.p10, spread.p90] if spread else [math.nan] * 3)
        rows.append(row)
    return header, rows
