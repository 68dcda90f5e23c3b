"""Parameter sweeps: one scenario file, a grid of overrides, replications at every point.

Every grid point is validated before anything runs. All points use the same replication
seeds (common random numbers), so neighbouring points differ by the parameter, not by noise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simulator.files import parquet_available, write_csv_table, write_json, write_parquet
from simulator.runner.ensemble import Ensemble
from simulator.runner.grid import Axes, GridError, Value, describe_point, expand_grid, parse_values
from simulator.runner.stats import Target
from simulator.scenario.loading import ScenarioError, apply_overrides, load_raw, validate_scenario
from simulator.scenario.merge import flatten_dotted
from simulator.scenario.models import Scenario

SWEEP_STATISTICS = ("p50", "p10", "p90", "mean", "stderr")
"""Columns per KPI in a sweep table (median first: it is the headline)."""


@dataclass(frozen=True)
class GridPoint:
    """One point of a sweep: its parameter values and the validated scenario they give."""

    params: dict[str, Value]
    scenario: Scenario


def sweep_axes(path: Path, assignments: Mapping[str, Sequence[Value] | str] | None = None) -> Axes:
    """The axes of a sweep of `path`: its `[sweep]` table, then `assignments` (which replace
    axes of the same key and add others). Errors name the file and the key."""
    data, _ = load_raw(path)
    axes: Axes = {}
    try:
        table = data.get("sweep", {})
        if not isinstance(table, dict):
            raise GridError("[sweep] must be a table of dotted keys")
        for key, spec in {**flatten_dotted(table), **(assignments or {})}.items():
            axes[key] = parse_values(key, spec)
    except GridError as exc:
        raise ScenarioError(path, "sweep", str(exc)) from None
    return axes


def grid_points(
    path: Path, axes: Mapping[str, Sequence[Value]], overrides: dict[str, Any] | None = None
) -> list[GridPoint]:
    """Every grid point of `axes` over the scenario file `path`, each validated (ScenarioError
    on the first bad one, before anything runs). `overrides` apply to every point."""
    try:
        combos = expand_grid(axes)
    except GridError as exc:
        raise ScenarioError(path, "sweep", str(exc)) from None
    data, provenance = load_raw(path)
    data.pop("sweep", None)
    data.setdefault("name", path.stem)
    base = apply_overrides(data, overrides or {}, path, provenance)
    points = []
    for params in combos:
        point_data = apply_overrides(base, dict(params), path, provenance)
        try:
            scenario = validate_scenario(point_data, path, provenance)
        except ScenarioError as exc:
            raise ScenarioError(exc.file, exc.key, f"{exc.message} (sweep point {describe_point(params)})") from None
        points.append(GridPoint(params, scenario))
    return points


@dataclass(frozen=True)
class SweepResult:
    """The replications at every grid point, in grid order."""

    axes: Axes
    points: tuple[GridPoint, ...] = field(repr=False)
    ensembles: tuple[Ensemble, ...] = field(repr=False)

    @property
    def reps(self) -> int:
        return self.ensembles[0].reps

    def table(self, kpis: Sequence[str] | None = None) -> tuple[list[str], list[list[Any]]]:
        """One row per grid point: the parameter values, then each KPI's median, P10, P90,
        mean and standard error (`kpis` limits the KPIs; default all)."""
        keys = list(kpis) if kpis is not None else list(self.ensembles[0].kpis)
        header = [*self.axes, *(f"{k}_{s}" for k in keys for s in SWEEP_STATISTICS)]
        rows = [
            [*point.params.values(), *(getattr(ensemble.kpis[k], s) for k in keys for s in SWEEP_STATISTICS)]
            for point, ensemble in zip(self.points, self.ensembles, strict=True)
        ]
        return header, rows

    def to_json(self, targets: Sequence[Target] = ()) -> dict[str, Any]:
        return {
            "axes": {k: list(v) for k, v in self.axes.items()},
            "reps": self.reps,
            "points": [
                {"params": point.params, **_point_json(ensemble, targets)}
                for point, ensemble in zip(self.points, self.ensembles, strict=True)
            ],
        }

    def write(self, directory: Path, targets: Sequence[Target] = ()) -> list[Path]:
        """sweep.csv (one row per grid point), replications.csv (one row per point and
        replication), result.json, and Parquet copies when pyarrow is installed."""
        directory.mkdir(parents=True, exist_ok=True)
        header, rows = self.table()
        rep_header: list[str] = []
        rep_rows: list[list[Any]] = []
        for k, (point, ensemble) in enumerate(zip(self.points, self.ensembles, strict=True)):
            inner_header, inner_rows = ensemble.replication_table()
            rep_header = ["point", *self.axes, *inner_header]
            rep_rows.extend([k, *point.params.values(), *row] for row in inner_rows)
        written = [
            write_csv_table(directory / "sweep.csv", header, rows),
            write_csv_table(directory / "replications.csv", rep_header, rep_rows),
            write_json(directory / "result.json", self.to_json(targets)),
        ]
        if parquet_available():
            written.append(write_parquet(directory / "sweep.parquet", header, rows))
        return written

    def to_pandas(self) -> Any:
        """The sweep table as a pandas DataFrame (needs pandas)."""
        import pandas as pd

        header, rows = self.table()
        return pd.DataFrame(rows, columns=header)


def _point_json(ensemble: Ensemble, targets: Sequence[Target]) -> dict[str, Any]:
    full = ensemble.to_json(targets)
    return {k: full[k] for k in ("scenario", "replication_seeds", "summary", "checkpoints", "targets")}
