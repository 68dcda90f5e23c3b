"""The `plgsim` command: a thin layer over `simulator.run`.

It lives beside the Textual app in `tui/` because it draws with rich, which the headless
`simulator` package must never import.

Exit codes: 0 success; 1 a run stopped (e.g. `simulation.max_users` reached); 2 bad input
(a scenario file or option), always with one message naming the file and the key.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Annotated, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from simulator.api import run as run_scenario
from simulator.engines.simpy_engine import SimulationLimitError
from simulator.formatting import SummaryRow, format_value, summary_rows
from simulator.result import Result
from simulator.scenario import Scenario, ScenarioError, load_scenario
from simulator.scenario.models import Scenario as ScenarioModel

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


def _guard(action: Callable[[], T]) -> T:
    """Turn expected failures into one message and an exit code, never a traceback."""
    try:
        return action()
    except ScenarioError as exc:
        stderr.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    except SimulationLimitError as exc:
        stderr.print(f"[red]run stopped:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None


def _load_all(files: Sequence[Path], seed: int | None, months: int | None) -> list[Scenario]:
    overrides: dict[str, object] = {}
    if seed is not None:
        overrides["simulation.seed"] = seed
    if months is not None:
        overrides["simulation.months"] = months
    return [load_scenario(path, overrides) for path in files]


def _fail(message: str) -> NoReturn:
    stderr.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


@app.command()
def run(
    file: Annotated[Path, typer.Argument(help="Scenario file (TOML).", show_default=False)],
    seed: SeedOpt = None,
    months: MonthsOpt = None,
    out: Annotated[Path | None, typer.Option(help="Write monthly series and cohort tables as CSV here.")] = None,
    as_json: JsonOpt = False,
    events: Annotated[Path | None, typer.Option(help="Write a CSV log of every simulated event here.")] = None,
) -> None:
    """Simulate one scenario and print its summary."""
    scenario = _guard(lambda: _load_all([file], seed, months)[0])
    # Check where results go before simulating, so a bad path does not waste the run.
    if out is not None and out.exists() and not out.is_dir():
        _fail(f"{out}: --out must be a directory, and this is a file")
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
        try:
            written = result.write_csv(out)
        except OSError as exc:
            _fail(f"{out}: --out cannot be written ({exc.strerror})")
        stderr.print(f"wrote {len(written)} CSV files to {out}", highlight=False)
    if as_json:
        print(json.dumps(result.to_json()))
    else:
        _print_table([result])


@app.command()
def compare(files: FilesArg, seed: SeedOpt = None, months: MonthsOpt = None, as_json: JsonOpt = False) -> None:
    """Simulate several scenarios and show them side by side, with differences from the first."""
    scenarios = _guard(lambda: _load_all(files, seed, months))
    results = []
    for scenario in scenarios:
        if not as_json:
            stderr.print(f"running {scenario.name}…", highlight=False)
        results.append(_guard(partial(run_scenario, scenario)))
    if as_json:
        for result in results:
            print(json.dumps(result.to_json()))
    else:
        _print_table(results)


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
    rows: list[list[SummaryRow]] = [summary_rows(r) for r in results]
    for i, row in enumerate(rows[0]):
        cells = [row.label]
        for j, result_rows in enumerate(rows):
            cell = result_rows[i]
            text = format_value(cell.value, cell.unit, results[j].scenario.currency)
            if j > 0:
                delta = format_value(cell.value - row.value, cell.unit, results[j].scenario.currency, signed=True)
                text += f" [dim](Δ {delta})[/dim]"
            cells.append(text)
        table.add_row(*cells)
    stdout.print(table)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        stderr.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
