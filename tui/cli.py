"""The `plgsim` command: a thin layer over `simulator.run`.

It lives beside the Textual app in `tui/` because it draws with rich, which the headless
`simulator` package must never import.

Exit codes: 0 success; 1 a run stopped (e.g. `simulation.max_users` reached); 2 bad input
(a scenario file or option), always with one message naming the file and the key.
"""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Callable, Sequence
from enum import StrEnum
from functools import partial
from pathlib import Path
from typing import Annotated, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from simulator.api import run as run_scenario
from simulator.api import run_many
from simulator.api import sweep as run_sweep
from simulator.engines.simpy_engine import SimulationLimitError
from simulator.formatting import (
    RowSpec,
    format_outcome,
    format_spread,
    format_value,
    row_spread,
    row_value,
    summary_specs,
)
from simulator.result import Result, kpi_keys
from simulator.runner.batch import BatchError, ItemReport, plan_batch, run_batch
from simulator.runner.ensemble import Ensemble
from simulator.runner.executors import DaskExecutor, ExecutorError, LocalExecutor, make_executor
from simulator.runner.grid import GridError, Value, parse_assignment
from simulator.runner.replications import ReplicationError
from simulator.runner.stats import Target, TargetError, parse_target
from simulator.runner.sweep import SweepResult, grid_points, sweep_axes
from simulator.scenario import Scenario, ScenarioError, load_scenario
from simulator.scenario.models import Scenario as ScenarioModel
from tui.progress import progress_reporter

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Simulate product-led SaaS growth from scenario files.",
    pretty_exceptions_enable=False,
)
stdout = Console()
stderr = Console(stderr=True)

T = TypeVar("T")

FilesArg = Annotated[list[Path], typer.Argument(help="Scenario files (TOML).", show_default=False)]
SeedOpt = Annotated[int | None, typer.Option(help="Override simulation.seed.")]
MonthsOpt = Annotated[int | None, typer.Option(min=1, max=240, help="Override simulation.months.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object per scenario (one per line).")]


RepsOpt = Annotated[
    int, typer.Option(min=1, max=100_000, help="Monte Carlo replications (seeds spawned from the scenario seed).")
]
TargetOpt = Annotated[
    list[str] | None,
    typer.Option("--target", help="A KPI condition such as 'nrr_12m>=1.10'; its probability is reported. Repeatable."),
]
WorkersOpt = Annotated[int | None, typer.Option(min=1, help="Local worker processes (default: every core).")]
SchedulerOpt = Annotated[
    str | None, typer.Option(help="Run on a Dask cluster, e.g. tcp://10.0.0.5:8786 (needs plgsim[dask]).")
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")]


class Engine(StrEnum):
    """The engines a scenario can run on."""

    FAST = "fast"
    SIMPY = "simpy"


EngineOpt = Annotated[
    Engine | None,
    typer.Option(help="Override simulation.engine: 'fast' (compiled, the default) or 'simpy' (the SimPy reference)."),
]


def _guard(action: Callable[[], T]) -> T:
    """Turn expected failures into one message and an exit code, never a traceback."""
    try:
        return action()
    except (ScenarioError, ExecutorError, BatchError) as exc:
        _fail(str(exc))
    except (SimulationLimitError, ReplicationError) as exc:
        stderr.print(f"[red]run stopped:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None


def _overrides(seed: int | None, months: int | None, engine: Engine | None = None) -> dict[str, object]:
    overrides: dict[str, object] = {}
    if engine is not None:
        overrides["simulation.engine"] = engine.value
    if seed is not None:
        overrides["simulation.seed"] = seed
    if months is not None:
        overrides["simulation.months"] = months
    return overrides


def _load_all(
    files: Sequence[Path], seed: int | None, months: int | None, engine: Engine | None = None
) -> list[Scenario]:
    return [load_scenario(path, _overrides(seed, months, engine)) for path in files]


def _fail(message: str) -> NoReturn:
    stderr.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def _targets(texts: Sequence[str] | None, months: int) -> list[Target]:
    known = dict.fromkeys(kpi_keys(months))
    try:
        return [parse_target(text, known) for text in texts or []]
    except TargetError as exc:
        _fail(f"--target: {exc}")


def _executor(workers: int | None, scheduler: str | None) -> LocalExecutor | DaskExecutor:
    return _guard(lambda: make_executor(workers, scheduler))


def _check_out_dir(out: Path | None) -> None:
    # Check where results go before simulating, so a bad path does not waste the run.
    if out is not None and out.exists() and not out.is_dir():
        _fail(f"{out}: --out must be a directory, and this is a file")


def _write(out: Path, write: Callable[[Path], list[Path]]) -> None:
    try:
        written = write(out)
    except OSError as exc:
        _fail(f"{out}: --out cannot be written ({exc.strerror})")
    stderr.print(f"wrote {len(written)} files to {out}", highlight=False)


@app.command()
def run(
    file: Annotated[Path, typer.Argument(help="Scenario file (TOML).", show_default=False)],
    seed: SeedOpt = None,
    months: MonthsOpt = None,
    reps: RepsOpt = 1,
    target: TargetOpt = None,
    out: Annotated[Path | None, typer.Option(help="Write monthly series and tables as CSV (and JSON) here.")] = None,
    as_json: JsonOpt = False,
    events: Annotated[
        Path | None, typer.Option(help="Write a CSV log of every simulated event here (runs the SimPy engine).")
    ] = None,
    workers: WorkersOpt = None,
    scheduler: SchedulerOpt = None,
    quiet: QuietOpt = False,
    engine: EngineOpt = None,
) -> None:
    """Simulate one scenario and print its summary.

    One run uses the scenario seed itself; with --reps N, replication i uses the i-th seed
    spawned from it (listed in --json and replications.csv, so `--seed S` reproduces it alone).
    """
    if events is not None:
        if engine == Engine.FAST:
            _fail("--events logs the SimPy engine's events; use it with --engine simpy (or without --engine)")
        engine = Engine.SIMPY  # the event log is written as the discrete-event engine runs
    scenario = _guard(lambda: _load_all([file], seed, months, engine)[0])
    targets = _targets(target, scenario.simulation.months)
    _check_out_dir(out)
    if reps > 1 or targets:
        if events is not None:
            _fail("--events logs one run; use it without --reps and --target")
        with _executor(workers, scheduler) as executor, progress_reporter(stderr, scenario.name, quiet) as progress:
            ensemble = _guard(lambda: run_many(scenario, reps=reps, executor=executor, on_progress=progress))
        if out is not None:
            _write(out, partial(ensemble.write, targets=targets))
        if as_json:
            print(json.dumps(ensemble.to_json(targets)))
        else:
            _print_spread_table([ensemble], targets)
        return
    if events is not None:
        try:
            log = events.open("w", newline="", encoding="utf-8")
        except OSError as exc:
            _fail(f"{events}: --events cannot be written ({exc.strerror})")
        with log:
            result = _guard(lambda: run_scenario(scenario, events=log))
    else:
        result = _guard(lambda: run_scenario(scenario))
    if out is not None:
        _write(out, result.write_csv)
    if as_json:
        print(json.dumps(result.to_json()))
    else:
        _print_table([result])


@app.command()
def compare(
    files: FilesArg,
    seed: SeedOpt = None,
    months: MonthsOpt = None,
    reps: RepsOpt = 1,
    target: TargetOpt = None,
    as_json: JsonOpt = False,
    workers: WorkersOpt = None,
    scheduler: SchedulerOpt = None,
    quiet: QuietOpt = False,
    engine: EngineOpt = None,
) -> None:
    """Simulate several scenarios and show them side by side, with differences from the first."""
    scenarios = _guard(lambda: _load_all(files, seed, months, engine))
    targets = _targets(target, min(s.simulation.months for s in scenarios))
    if reps > 1 or targets:
        ensembles = []
        with _executor(workers, scheduler) as executor:
            for scenario in scenarios:
                with progress_reporter(stderr, scenario.name, quiet or as_json) as progress:
                    ensembles.append(
                        _guard(partial(run_many, scenario, reps=reps, executor=executor, on_progress=progress))
                    )
        if as_json:
            for ensemble in ensembles:
                print(json.dumps(ensemble.to_json(targets)))
        else:
            _print_spread_table(ensembles, targets)
        return
    results = []
    for scenario in scenarios:
        if not (as_json or quiet):
            stderr.print(f"running {scenario.name}…", highlight=False)
        results.append(_guard(partial(run_scenario, scenario)))
    if as_json:
        for result in results:
            print(json.dumps(result.to_json()))
    else:
        _print_table(results)


@app.command()
def sweep(
    file: Annotated[Path, typer.Argument(help="Scenario file (TOML).", show_default=False)],
    assignments: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="KEY=START:STOP:STEP or KEY=A,B,C for any dotted scenario key; repeat for a grid. "
            "Adds to the file's [sweep] table.",
        ),
    ] = None,
    reps: RepsOpt = 10,
    target: TargetOpt = None,
    seed: SeedOpt = None,
    months: MonthsOpt = None,
    out: Annotated[Path | None, typer.Option(help="Write sweep.csv, replications.csv and result.json here.")] = None,
    as_json: JsonOpt = False,
    workers: WorkersOpt = None,
    scheduler: SchedulerOpt = None,
    quiet: QuietOpt = False,
    engine: EngineOpt = None,
) -> None:
    """Run replications at every point of a parameter grid (all points share random numbers)."""
    axes: dict[str, list[Value]] = {}
    for text in assignments or []:
        try:
            key, values = parse_assignment(text)
        except GridError as exc:
            _fail(f"--set {exc}")
        axes[key] = values
    overrides = _overrides(seed, months, engine)
    base = _guard(lambda: load_scenario(file, overrides))
    targets = _targets(target, base.simulation.months)
    _check_out_dir(out)

    # Validate every grid point before starting workers.
    points = _guard(lambda: grid_points(file, sweep_axes(file, axes), overrides))
    with (
        _executor(workers, scheduler) as executor,
        progress_reporter(stderr, f"{base.name}: {len(points)} points", quiet) as progress,
    ):
        result = _guard(
            lambda: run_sweep(file, axes, reps=reps, overrides=overrides, executor=executor, on_progress=progress)
        )
    if out is not None:
        _write(out, partial(result.write, targets=targets))
    if as_json:
        print(json.dumps(result.to_json(targets)))
    else:
        _print_sweep_table(result, targets)


@app.command()
def batch(
    paths: Annotated[
        list[Path], typer.Argument(help="Scenario or sweep files, or folders of them.", show_default=False)
    ],
    out: Annotated[Path, typer.Option(help="Folder for results, manifest and combined summary.", show_default=False)],
    reps: RepsOpt = 10,
    target: TargetOpt = None,
    seed: SeedOpt = None,
    months: MonthsOpt = None,
    workers: WorkersOpt = None,
    scheduler: SchedulerOpt = None,
    quiet: QuietOpt = False,
    engine: EngineOpt = None,
) -> None:
    """Run every scenario file (and every file with a [sweep] table), resumably.

    Re-running the same command skips items already finished with the same scenario hash.
    Exit code: 0 all done; 1 a run failed; 2 a file was bad input (the others still ran);
    130 interrupted (what finished is kept).
    """
    _check_out_dir(out)
    targets = _targets(target, months or 36)
    items = plan_batch(paths, reps, _overrides(seed, months, engine), targets)
    if not items:
        _fail("no scenario files found in " + ", ".join(map(str, paths)))

    def report(item: ItemReport) -> None:
        if item.status == "failed":
            stderr.print(f"[red]failed[/red] {escape(item.id)}: {escape(item.error)}", highlight=False, soft_wrap=True)
        elif not quiet:
            note = " (already done, same hash)" if item.status == "skipped" else ""
            stderr.print(f"{item.status} {escape(item.id)}{note}", highlight=False)

    with _executor(workers, scheduler) as executor, progress_reporter(stderr, "batch", quiet) as progress:
        try:
            outcome = _guard(lambda: run_batch(items, out, reps, executor, targets, progress, report))
        except KeyboardInterrupt:
            stderr.print(
                f"interrupted: finished items are kept in {escape(str(out))}; run the same command again to resume",
                highlight=False,
            )
            raise typer.Exit(130) from None
    done = sum(i.status != "failed" for i in outcome.items)
    stderr.print(f"{done} of {len(outcome.items)} items done; results in {escape(str(out))}", highlight=False)
    if any(i.bad_input for i in outcome.failed):
        raise typer.Exit(2)
    if outcome.failed:
        raise typer.Exit(1)


@app.command()
def tui(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Scenario files or folders (default: scenarios/).", show_default=False)
    ] = None,
    reps: RepsOpt = 1,
    workers: WorkersOpt = None,
    engine: EngineOpt = None,
) -> None:
    """Open the terminal UI: compare scenarios, edit assumptions, watch the projection move."""
    from tui.app import PlgsimApp

    chosen = paths or [Path("scenarios")]
    missing = [p for p in chosen if not p.exists()]
    if missing:
        _fail(f"{missing[0]}: no such file or folder")
    PlgsimApp(chosen, reps=reps, workers=workers, engine=engine.value if engine else None).run()


@app.command()
def validate(files: FilesArg) -> None:
    """Check scenario files without running them."""
    failed = False
    for path in files:
        try:
            scenario = load_scenario(path)
        except ScenarioError as exc:
            stderr.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
            failed = True
        else:
            stdout.print(f"ok: {path} ({scenario.name})", highlight=False)
    if failed:
        raise typer.Exit(2)


@app.command()
def schema() -> None:
    """Print the JSON Schema of scenario files (for editor completion)."""
    print(json.dumps(ScenarioModel.model_json_schema(), indent=2))


def _print_table(results: list[Result]) -> None:
    table = Table(title="plgsim projection (one replication)", title_justify="left")
    table.add_column("metric")
    for result in results:
        table.add_column(f"{result.name}\nseed {result.seed}", justify="right")
    # Rows at a month are read at that month in every column, whatever each run's horizon.
    for spec in summary_specs(min(r.ledger.months for r in results)):
        cells = [spec.label]
        values = [row_value(spec, r.kpis, r.monthly) for r in results]
        for j, (result, value) in enumerate(zip(results, values, strict=True)):
            text = format_value(value, spec.unit, result.scenario.currency)
            if j > 0:
                delta = value - values[0]
                text += f" [dim](Δ {format_value(delta, spec.unit, result.scenario.currency, signed=True)})[/dim]"
            cells.append(text)
        table.add_row(*cells)
    stdout.print(table)


def _print_spread_table(ensembles: list[Ensemble], targets: Sequence[Target]) -> None:
    reps = ensembles[0].reps
    table = Table(title=f"plgsim projection: median [P10 – P90] of {reps} replications", title_justify="left")
    table.add_column("metric")
    for ensemble in ensembles:
        table.add_column(f"{ensemble.name}\nseed {ensemble.seed}, {ensemble.reps} reps", justify="right")
    for spec in summary_specs(min(e.months for e in ensembles)):
        cells = [spec.label]
        for ensemble in ensembles:
            value = row_spread(spec, ensemble)
            cells.append(format_spread(value, spec.unit, ensemble.scenario.currency) if value else "n/a")
        table.add_row(*cells)
    for target in targets:
        table.add_row(f"P({target})", *(format_outcome(e.probability(target)) for e in ensembles))
    stdout.print(table)


SWEEP_COLUMNS: tuple[RowSpec, ...] = (
    RowSpec("users@horizon", "users", "users"),
    RowSpec("mrr@horizon", "MRR", "money"),
    RowSpec("nrr_12m", "NRR 12m", "rate"),
    RowSpec("cac_payback_months", "CAC payback", "months"),
    RowSpec("ltv_to_cac", "LTV:CAC", "ratio"),
    RowSpec("viral_k", "K", "count"),
)


def _print_sweep_table(result: SweepResult, targets: Sequence[Target]) -> None:
    table = Table(
        title=f"plgsim sweep: median [P10 – P90] of {result.reps} replications per point (shared seeds)",
        title_justify="left",
    )
    for key in result.axes:
        table.add_column(key)
    for spec in SWEEP_COLUMNS:
        table.add_column(spec.label, justify="right")
    for target in targets:
        table.add_column(f"P({target})", justify="right")
    for point, ensemble in zip(result.points, result.ensembles, strict=True):
        currency = ensemble.scenario.currency
        table.add_row(
            *(str(v) for v in point.params.values()),
            *(format_spread(ensemble.kpis[s.key], s.unit, currency) for s in SWEEP_COLUMNS),
            *(format_outcome(ensemble.probability(t)) for t in targets),
        )
    stdout.print(table)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    """Console-script entry point. SIGTERM stops like Ctrl-C: cleanly, keeping what finished."""
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        app()
    except KeyboardInterrupt:
        stderr.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
