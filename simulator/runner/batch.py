"""Batch runs: many scenario and sweep files, replications of each, results in one folder.

Layout of the output folder:
    manifest.json       every item: file, kind, scenario hash, seed, reps, version, status,
                        start and end time, error (the only file with clocks in it)
    summary.csv         one row per scenario (per grid point for sweeps) with every KPI's
                        P10, P50, P90, mean and standard error; rebuilt at the end of a run
    <item>/             the item's own files (see Ensemble.write and SweepResult.write)

Resumable: an item whose manifest entry is done with the same hash, and whose folder exists,
is skipped. An item's folder is written under a temporary name and renamed into place before
the manifest calls it done, so an interrupted batch never leaves a half-written result that
looks complete.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from simulator.files import parquet_available, write_csv_table, write_json, write_parquet
from simulator.runner.digest import RunFailure
from simulator.runner.executors import Executor, Job, Outcome
from simulator.runner.grid import Axes, describe_point
from simulator.runner.replications import Progress, ProgressCallback, assemble, ensemble_jobs
from simulator.runner.stats import Target
from simulator.runner.sweep import GridPoint, SweepResult, grid_points, sweep_axes
from simulator.scenario.loading import ScenarioError, load_scenario

MANIFEST = "manifest.json"
SUMMARY = "summary.csv"
SUMMARY_STATISTICS = ("p10", "p50", "p90", "mean", "stderr")

Status = Literal["done", "skipped", "failed"]


class BatchError(Exception):
    """The batch itself cannot run (e.g. an unreadable manifest); the message names the file."""


@dataclass
class BatchItem:
    """One file of a batch: a scenario, or a sweep (a file with a [sweep] table)."""

    id: str
    file: Path
    points: list[GridPoint] = field(default_factory=list)
    """One point with empty params for a plain scenario; the grid for a sweep."""
    axes: Axes = field(default_factory=dict)
    """The sweep's axes; empty for a plain scenario."""
    error: ScenarioError | None = None
    hash: str = ""

    @property
    def kind(self) -> str:
        return "sweep" if self.axes else "scenario"

    @property
    def seed(self) -> int | None:
        return self.points[0].scenario.simulation.seed if self.points else None


@dataclass(frozen=True)
class ItemReport:
    """What happened to one item in this run."""

    id: str
    file: Path
    status: Status
    error: str = ""
    bad_input: bool = False


@dataclass
class BatchReport:
    """The outcome of a batch run, item by item, in input order."""

    items: list[ItemReport] = field(default_factory=list)

    @property
    def failed(self) -> list[ItemReport]:
        return [i for i in self.items if i.status == "failed"]


def scenario_files(paths: Sequence[Path]) -> list[Path]:
    """Files as given, folders expanded to their *.toml files (sorted), duplicates dropped."""
    files: list[Path] = []
    for path in paths:
        found = sorted(path.glob("*.toml")) if path.is_dir() else [path]
        files.extend(f for f in found if f.resolve() not in {g.resolve() for g in files})
    return files


def plan_batch(
    paths: Sequence[Path], reps: int, overrides: dict[str, Any] | None = None, targets: Sequence[Target] = ()
) -> list[BatchItem]:
    """Load every file (a file that fails is kept as a failed item) and hash what would run."""
    from simulator import __version__

    items = []
    for file, item_id in zip(files := scenario_files(paths), _item_ids(files), strict=True):
        item = BatchItem(item_id, file)
        try:
            axes = sweep_axes(file)
            if axes:
                item.axes = axes
                item.points = grid_points(file, axes, overrides)
            else:
                item.points = [GridPoint({}, load_scenario(file, overrides))]
        except ScenarioError as exc:
            item.error = exc
        if item.error is None:
            identity = {
                "scenarios": [p.scenario.model_dump(mode="json") for p in item.points],
                "params": [p.params for p in item.points],
                "reps": reps,
                "targets": [str(t) for t in targets],
                "version": __version__,
            }
            item.hash = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
        items.append(item)
    return items


def _item_ids(files: Sequence[Path]) -> list[str]:
    """Folder names for items: the file stem, qualified by its folder when stems collide."""
    stems = [f.stem for f in files]
    ids = [s if stems.count(s) == 1 else f"{f.parent.name}-{s}" for f, s in zip(files, stems, strict=True)]
    return [i if ids.count(i) == 1 else f"{i}-{n}" for n, i in enumerate(ids)]


def run_batch(
    items: Sequence[BatchItem],
    out: Path,
    reps: int,
    executor: Executor,
    targets: Sequence[Target] = (),
    on_progress: ProgressCallback | None = None,
    on_item: Callable[[ItemReport], None] | None = None,
) -> BatchReport:
    """Run the items not already done and write results, manifest and combined summary to `out`.

    Ctrl-C (KeyboardInterrupt) propagates after the items finished so far are written."""
    from simulator import __version__

    out.mkdir(parents=True, exist_ok=True)
    manifest = _read_manifest(out / MANIFEST)
    for stale in out.glob(".tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)
    reports: dict[str, ItemReport] = {}

    def finish(item: BatchItem, report: ItemReport, entry: dict[str, Any]) -> None:
        manifest["items"][item.id] = entry
        manifest["plgsim_version"] = __version__
        write_json(out / MANIFEST, manifest)
        reports[item.id] = report
        if on_item is not None:
            on_item(report)

    pending: list[BatchItem] = []
    for item in items:
        entry = _entry(item, reps)
        if item.error is not None:
            message = str(item.error)
            finish(item, ItemReport(item.id, item.file, "failed", message, True), {**entry, "error": message})
        elif _is_done(manifest["items"].get(item.id), item, out):
            reports[item.id] = ItemReport(item.id, item.file, "skipped")
            if on_item is not None:
                on_item(reports[item.id])
        else:
            pending.append(item)

    jobs: list[Job] = []
    owner: list[tuple[BatchItem, int]] = []  # job index → (item, point index)
    for item in pending:
        for k, point in enumerate(item.points):
            point_jobs = ensemble_jobs(point.scenario, reps)
            jobs.extend(point_jobs)
            owner.extend((item, k) for _ in point_jobs)
    outcomes: dict[str, dict[int, Outcome]] = {item.id: {} for item in pending}
    started = _now()
    items_total = len(items)
    for done_jobs, (index, outcome) in enumerate(executor.run(jobs), start=1):
        item, _ = owner[index]
        outcomes[item.id][index] = outcome
        if len(outcomes[item.id]) == reps * len(item.points):
            ordered = [outcomes[item.id][i] for i in sorted(outcomes[item.id])]
            report, extra = _write_item(item, ordered, out, reps, targets)
            finish(item, report, {**_entry(item, reps), "started": started, "finished": _now(), **extra})
            del outcomes[item.id]
        if on_progress is not None:
            on_progress(Progress(done_jobs, len(jobs), len(reports), items_total, item.id))
    _write_summary(out, [item for item in items if reports[item.id].status != "failed"])
    return BatchReport([reports[item.id] for item in items])


def _entry(item: BatchItem, reps: int) -> dict[str, Any]:
    from simulator import __version__

    return {
        "file": str(item.file),
        "kind": item.kind,
        "hash": item.hash,
        "seed": item.seed,
        "reps": reps,
        "points": len(item.points),
        "version": __version__,
        "status": "failed" if item.error else "running",
        "started": None,
        "finished": None,
        "error": None,
    }


def _write_item(
    item: BatchItem, outcomes: Sequence[Outcome], out: Path, reps: int, targets: Sequence[Target]
) -> tuple[ItemReport, dict[str, Any]]:
    failures = [o for o in outcomes if isinstance(o, RunFailure)]
    if failures:
        first = failures[0]
        message = f"{item.file}: replication with seed {first.seed} failed: {first.message}"
        report = ItemReport(item.id, item.file, "failed", message, first.bad_input)
        return report, {"status": "failed", "error": message, "error_detail": first.detail or None}
    tmp = out / f".tmp-{item.id}"
    shutil.rmtree(tmp, ignore_errors=True)
    ensembles = [assemble(point.scenario, outcomes[k * reps : (k + 1) * reps]) for k, point in enumerate(item.points)]
    if item.axes:
        SweepResult(item.axes, tuple(item.points), tuple(ensembles)).write(tmp, targets)
    else:
        ensembles[0].write(tmp, targets)
    final = out / item.id
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)
    return ItemReport(item.id, item.file, "done"), {"status": "done"}


def _is_done(entry: dict[str, Any] | None, item: BatchItem, out: Path) -> bool:
    if entry is None:
        return False
    return entry.get("status") == "done" and entry.get("hash") == item.hash and (out / item.id).is_dir()


def _read_manifest(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {"plgsim_version": None, "items": {}}
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BatchError(f"{path}: not a readable batch manifest ({exc}); use another --out folder") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("items"), dict):
        raise BatchError(f"{path}: not a batch manifest (no 'items' table); use another --out folder")
    return manifest


def _write_summary(out: Path, items: Sequence[BatchItem]) -> None:
    """The combined summary, read back from each item's result.json, so skipped and freshly
    run items give the same bytes."""
    rows: list[tuple[str, str, dict[str, Any]]] = []
    for item in items:
        result = json.loads((out / item.id / "result.json").read_text(encoding="utf-8"))
        points = result["points"] if item.axes else [{"params": {}, **result}]
        rows.extend((item.id, describe_point(p["params"]), _flat_kpis(p)) for p in points)
    keys = sorted({k for _, _, kpis in rows for k in kpis})
    header = ["item", "point", *(f"{k}_{s}" for k in keys for s in SUMMARY_STATISTICS)]
    table = [
        [item, point, *(_number(kpis.get(k, {}).get(s)) for k in keys for s in SUMMARY_STATISTICS)]
        for item, point, kpis in rows
    ]
    write_csv_table(out / SUMMARY, header, table)
    if parquet_available():
        write_parquet(out / "summary.parquet", header, table)


def _flat_kpis(point: dict[str, Any]) -> dict[str, dict[str, Any]]:
    flat = dict(point["summary"])
    for label, values in point["checkpoints"].items():
        flat.update({f"{k}@{label}": v for k, v in values.items()})
    return flat


def _number(value: float | None) -> float:
    return float("nan") if value is None else float(value)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
