"""The plgsim terminal UI: compare scenarios side by side, edit assumptions, watch KPIs move.

The simulator stays headless: this module calls the same Python API as the CLI, in background
threads, and never blocks the interface on a run.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.timer import Timer
from textual.widgets import (
    DataTable,
    Footer,
    Header,
    Input,
    Label,
    Markdown,
    SelectionList,
    Static,
    TabbedContent,
    TabPane,
)
from textual.widgets.selection_list import Selection
from textual.worker import Worker, get_current_worker
from textual_plotext import PlotextPlot

from simulator.engines.simpy_engine import SimulationLimitError
from simulator.files import write_atomic, write_csv_table
from simulator.runner.ensemble import Ensemble
from simulator.scenario import Scenario, ScenarioError
from simulator.scenario.models import EngineName
from tui.assumptions import Assumption, apply_edits, assumptions, parse_number
from tui.catalog import Entry, discover, load_entry
from tui.comparison import comparison_rows, export_rows
from tui.runs import Stale, project
from tui.variant import save_variant

CHARTS = {
    "growth": ("active_users", "Active users"),
    "mrr": ("mrr", "MRR"),
    "nrr": ("nrr_12m", "NRR, trailing 12 months"),
}
RETENTION_TABLES = {
    "accounts": "Paying accounts still paying, by first-payment cohort",
    "users": "Users still active, by signup cohort",
    "revenue": "Cohort MRR / its first-month MRR (revenue retention)",
}
EDIT_DELAY_SECONDS = 0.35
"""Typing pauses this long before a run starts, so each keystroke does not start one."""

HELP = """\
# plgsim — keys

| key | action |
| --- | --- |
| ↑ ↓ | move in the scenario list (the highlighted scenario is the one edited and charted) |
| space | select or unselect the highlighted scenario for comparison |
| b | make the highlighted scenario the baseline (differences are against it) |
| 1 … 7 | show the comparison, growth, MRR, NRR, waterfall, retention or assumptions tab |
| e | edit the highlighted scenario's assumptions |
| t | cycle the retention heat map: accounts, users, revenue |
| s | save the edited scenario as a variant that extends the original |
| x | export the comparison table (CSV) and the chart on screen (text) |
| r | re-run the selected scenarios |
| ? | this help; escape closes it |
| q | quit |

Edits re-run the scenario in the background; a newer edit cancels a run still going. With
`--reps N`, cells show the median and the P10–P90 range of N replications, and charts show
the P10 and P90 lines.
"""


PROGRESS_INTERVAL = 0.1
"""Seconds between progress updates of a running scenario."""


class RunProgress(Message):
    """A background run's share done. Posted from the run's thread, so that the run never
    waits for the screen (a run of a fraction of a second reports 36 times)."""

    def __init__(self, path: Path, share: float) -> None:
        super().__init__()
        self.path = path
        self.share = share


class HelpScreen(ModalScreen[None]):
    """Every key binding, on top of the main screen."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,question_mark,q", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Markdown(HELP)


class PlgsimApp(App[None]):
    """Scenario list on the left; comparison, charts and the assumption editor in tabs."""

    TITLE = "plgsim"
    SUB_TITLE = "product-led growth projections"
    CSS = """
    #sidebar { width: 30; min-width: 24; border-right: solid $primary; }
    #scenarios { height: 1fr; }
    #details { height: auto; max-height: 10; padding: 0 1; color: $text-muted; }
    #status { height: 1; padding: 0 1; background: $boost; }
    #tabs { height: 1fr; }
    #comparison { height: 1fr; }
    PlotextPlot { height: 1fr; }
    .assumption { height: 3; }
    .assumption Label { width: 28; padding: 1 1 0 0; }
    .assumption Input { width: 16; }
    .assumption .unit { width: 1fr; padding: 1 0 0 1; color: $text-muted; }
    .assumption Input.-refused { border: tall $error; }
    #editor-message { padding: 0 1; height: auto; }
    #help { width: 90; height: auto; max-height: 90%; border: thick $primary; background: $surface; }
    HelpScreen { align: center middle; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit"),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("b", "set_baseline", "Baseline"),
        Binding("e", "edit", "Edit"),
        Binding("s", "save_variant", "Save variant"),
        Binding("x", "export", "Export"),
        Binding("r", "rerun", "Re-run"),
        Binding("t", "cycle_retention", "Heat map", show=False),
        Binding("escape", "leave_field", "Leave field", show=False),
        *(
            Binding(str(i), f"show_tab('{tab}')", tab.capitalize(), show=False)
            for i, tab in enumerate(("compare", "growth", "mrr", "nrr", "waterfall", "retention", "assumptions"), 1)
        ),
    ]

    def __init__(
        self,
        paths: Sequence[Path],
        reps: int = 1,
        workers: int | None = None,
        export_dir: Path | None = None,
        engine: EngineName | None = None,
    ) -> None:
        super().__init__()
        self.paths = list(paths)
        self.reps = reps
        self.pool_workers = workers
        self.engine = engine  # None: each scenario's simulation.engine
        self.export_dir = export_dir or Path.cwd() / "plgsim-export"
        self.entries: dict[Path, Entry] = {}
        self.edits: dict[Path, dict[str, Any]] = {}
        self.results: dict[Path, Ensemble] = {}
        self.progress: dict[Path, float] = {}
        self.failures: dict[Path, str] = {}
        self.baseline: Path | None = None
        self.current: Path | None = None
        self.retention_table = "accounts"
        self._edit_timers: dict[str, Timer] = {}
        self._editable: dict[str, Assumption] = {}

    # --- layout --------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal():
            with Vertical(id="sidebar"):
                yield SelectionList[str](id="scenarios")
                yield Static(id="details")
            with Vertical():
                with TabbedContent(id="tabs"):
                    with TabPane("Compare", id="compare"):
                        yield DataTable(id="comparison", zebra_stripes=True, cursor_type="row")
                    for tab, (_, title) in CHARTS.items():
                        with TabPane(title.split(",")[0], id=tab):
                            yield PlotextPlot(id=f"chart-{tab}")
                    with TabPane("Waterfall", id="waterfall"):
                        yield PlotextPlot(id="chart-waterfall")
                    with TabPane("Retention", id="retention"):
                        yield DataTable(id="heatmap", cursor_type="none")
                    with TabPane("Assumptions", id="assumptions"):
                        yield VerticalScroll(id="editor")
                        yield Static(id="editor-message")
                yield Static(id="status")
        yield Footer()

    def on_mount(self) -> None:
        entries = discover(self.paths)
        self.entries = {entry.path: entry for entry in entries}
        listing = self.query_one("#scenarios", SelectionList)
        files_given = all(p.is_file() for p in self.paths)
        usable = [e.path for e in entries if e.scenario is not None]
        initial = usable[:4] if files_given else usable[:2]
        for entry in entries:
            listing.add_option(Selection(_prompt(entry), str(entry.path), entry.path in initial))
        if entries:
            listing.highlighted = 0  # so the first space selects something
        self.baseline = initial[0] if initial else None
        self.current = entries[0].path if entries else None
        if not entries:
            self._status("no scenario files found in " + ", ".join(map(str, self.paths)))
        for path in initial:
            self._start_run(path)
        self._show_details()
        self._build_editor()
        self._refresh_all()

    # --- selection -----------------------------------------------------------------------
    @property
    def selected(self) -> list[Path]:
        """Selected scenarios, in list order."""
        chosen = set(self.query_one("#scenarios", SelectionList).selected)
        return [path for path in self.entries if str(path) in chosen]

    @on(SelectionList.SelectionHighlighted, "#scenarios")
    def _highlighted(self, event: SelectionList.SelectionHighlighted[str]) -> None:
        if Path(event.selection.value) == self.current and self.query("#editor Input"):
            return  # already shown: rebuilding the editor would drop values being typed
        self.current = Path(event.selection.value)
        self._show_details()
        self._build_editor()
        self._refresh_current_charts()

    @on(SelectionList.SelectedChanged, "#scenarios")
    def _selection_changed(self, event: SelectionList.SelectedChanged[str]) -> None:
        listing = event.selection_list
        for path in self.selected:
            entry = self.entries[path]
            if entry.scenario is None:
                listing.deselect(str(path))
                self.notify(f"{entry.path.name} cannot run: {entry.error}", severity="error", timeout=8)
            elif path not in self.results and path not in self.progress:
                self._start_run(path)
        if self.baseline not in self.selected:
            self.baseline = self.selected[0] if self.selected else None
        self._refresh_all()

    # --- runs ----------------------------------------------------------------------------
    def _scenario_for(self, path: Path) -> Scenario:
        edits = self.edits.get(path)
        if edits:
            return apply_edits(path, edits)
        scenario = self.entries[path].scenario
        assert scenario is not None
        return scenario

    def _start_run(self, path: Path) -> None:
        """Run `path` in a background thread; a newer run of the same scenario cancels it."""
        scenario = self._scenario_for(path)
        self.progress[path] = 0.0
        self.failures.pop(path, None)
        self.run_worker(
            partial(self._simulate, path, scenario),
            name=f"run {path.name}",
            group=f"run:{path}",
            exclusive=True,
            thread=True,
        )
        self._refresh_status()

    def _simulate(self, path: Path, scenario: Scenario) -> None:
        worker = get_current_worker()
        last_shown = time.monotonic()

        def progress(share: float) -> None:
            nonlocal last_shown
            if worker.is_cancelled:
                raise Stale
            # A few updates a second are enough to watch; each one costs the screen a redraw.
            if time.monotonic() - last_shown >= PROGRESS_INTERVAL:
                last_shown = time.monotonic()
                self.post_message(RunProgress(path, share))

        try:
            ensemble = project(scenario, self.reps, progress, self.pool_workers, self.engine)
        except Stale:
            return
        except (SimulationLimitError, ScenarioError) as exc:
            if not worker.is_cancelled:
                self.call_from_thread(self._on_failure, path, str(exc))
            return
        if not worker.is_cancelled:
            self.call_from_thread(self._on_result, path, ensemble)

    def on_run_progress(self, message: RunProgress) -> None:
        if not self.is_running:
            return  # a run that ends while the app closes has nowhere to show
        if message.path in self.progress:
            self.progress[message.path] = message.share
            self._refresh_status()

    def _on_result(self, path: Path, ensemble: Ensemble) -> None:
        if not self.is_running:
            return  # a run that ends while the app closes has nowhere to show
        self.progress.pop(path, None)
        self.results[path] = ensemble
        self._refresh_all()

    def _on_failure(self, path: Path, message: str) -> None:
        if not self.is_running:
            return  # a run that ends while the app closes has nowhere to show
        self.progress.pop(path, None)
        self.results.pop(path, None)
        self.failures[path] = message
        self.notify(message, severity="error", timeout=10)
        self._refresh_all()

    def action_rerun(self) -> None:
        for path in self.selected:
            self._start_run(path)

    # --- the comparison table ------------------------------------------------------------
    def _columns(self) -> list[tuple[Path, Ensemble | None]]:
        return [(path, self.results.get(path)) for path in self.selected]

    def _refresh_all(self) -> None:
        self._refresh_table()
        self._refresh_charts()
        self._refresh_current_charts()
        self._refresh_status()

    def _refresh_table(self) -> None:
        table = self.query_one("#comparison", DataTable)
        table.clear(columns=True)
        columns = self._columns()
        if not columns:
            table.add_column("select scenarios with space")
            return
        baseline = next((i for i, (p, _) in enumerate(columns) if p == self.baseline), 0)
        rows = comparison_rows([r for _, r in columns], baseline)
        # Explicit widths: every cell stays whole; a narrow terminal scrolls the table sideways.
        table.add_column("metric", key="metric", width=max((len(r.spec.label) for r in rows), default=6))
        for j, (path, _) in enumerate(columns):
            label = self.entries[path].name + (" (baseline)" if path == self.baseline else "")
            width = max([len(label), *(len(r.cells[j].text) for r in rows)])
            table.add_column(label, key=str(path), width=width)
        for row in rows:
            cells: list[Text | str] = [row.spec.label]
            for cell in row.cells:
                cells.append(Text(cell.text, style="bold green" if cell.best else ""))
            table.add_row(*cells, key=row.spec.key)

    # --- charts --------------------------------------------------------------------------
    def _refresh_charts(self) -> None:
        for tab, (series, title) in CHARTS.items():
            plot = self.query_one(f"#chart-{tab}", PlotextPlot)
            plt = plot.plt
            plt.clear_data()
            plt.clear_figure()
            plt.title(title + (" — median, P10 and P90" if self.reps > 1 else ""))
            plt.xlabel("month")
            for path, ensemble in self._columns():
                if ensemble is None:
                    continue
                stats = ensemble.monthly[series]
                months = list(range(1, ensemble.months + 1))
                name = self.entries[path].name
                _line(plt, months, stats["p50"], name, scale=100 if series == "nrr_12m" else 1)
                if ensemble.reps > 1:
                    for band in ("p10", "p90"):
                        _line(plt, months, stats[band], None, marker="dot", scale=100 if series == "nrr_12m" else 1)
            plot.refresh()

    def _refresh_current_charts(self) -> None:
        ensemble = self.results.get(self.current) if self.current else None
        plot = self.query_one("#chart-waterfall", PlotextPlot)
        plt = plot.plt
        plt.clear_data()
        plt.clear_figure()
        heatmap = self.query_one("#heatmap", DataTable)
        heatmap.clear(columns=True)
        if ensemble is None or self.current is None:
            plt.title("MRR waterfall: highlight a scenario that has run")
            plot.refresh()
            heatmap.add_column("highlight a scenario that has run")
            return
        name = self.entries[self.current].name
        plt.title(f"MRR waterfall of {name}, per month ({ensemble.scenario.currency})")
        plt.xlabel("month")
        months = list(range(1, ensemble.months + 1))
        for flow, sign in (("new", 1), ("expansion", 1), ("reactivation", 1), ("contraction", -1), ("churned", -1)):
            _line(plt, months, sign * ensemble.monthly[f"mrr_{flow}"]["p50"], flow if sign > 0 else f"−{flow}")
        plot.refresh()
        _fill_heatmap(heatmap, ensemble.mean_table(self.retention_table))

    def action_cycle_retention(self) -> None:
        names = list(RETENTION_TABLES)
        self.retention_table = names[(names.index(self.retention_table) + 1) % len(names)]
        self._refresh_current_charts()
        self.notify(RETENTION_TABLES[self.retention_table], timeout=3)

    # --- status and details --------------------------------------------------------------
    def _status(self, text: str) -> None:
        self.query_one("#status", Static).update(text)

    def _refresh_status(self) -> None:
        parts = [f"{self.entries[p].name} {share:.0%}" for p, share in self.progress.items()]
        reps = f"{self.reps} replications" if self.reps > 1 else "one replication, scenario seed"
        if parts:
            self._status("running: " + ", ".join(parts))
        else:
            failed = [self.entries[p].name for p in self.failures if p in self.selected]
            note = f" · failed: {', '.join(failed)}" if failed else ""
            self._status(f"{len(self.selected)} selected · {reps}{note} · ? for help")

    def _show_details(self) -> None:
        details = self.query_one("#details", Static)
        entry = self.entries.get(self.current) if self.current else None
        if entry is None:
            details.update("")
            return
        lines = [entry.path.name]
        if entry.parent:
            lines.append(f"extends {entry.parent}")
        if entry.scenario is not None and entry.scenario.description:
            lines.append(entry.scenario.description)
        if self.edits.get(entry.path):
            lines.append(f"edited: {len(self.edits[entry.path])} change(s) (s saves a variant)")
        text = Text("\n".join(lines))
        if entry.error:
            text.append("\n" + entry.error, style="bold red")
        details.update(text)

    # --- the assumption editor -----------------------------------------------------------
    def _build_editor(self) -> None:
        editor = self.query_one("#editor", VerticalScroll)
        editor.remove_children()
        message = self.query_one("#editor-message", Static)
        entry = self.entries.get(self.current) if self.current else None
        if entry is None or entry.scenario is None:
            message.update(Text(entry.error if entry else "", style="red"))
            return
        scenario = self._scenario_for(entry.path)
        rows = []
        for i, assumption in enumerate(assumptions(scenario)):
            field = Input(_number_text(assumption.value), id=f"edit-{i}", name=assumption.key)
            field.tooltip = f"{assumption.key}; allowed {assumption.allowed}"
            rows.append(
                Horizontal(
                    Label(assumption.label),
                    field,
                    Label(f"{assumption.unit} · allowed {assumption.allowed}", classes="unit"),
                    classes="assumption",
                )
            )
        editor.mount_all(rows)
        self._editable = {a.key: a for a in assumptions(scenario)}
        message.update(f"Editing {entry.name}: a change re-runs it. Enter or a pause applies.")

    @on(Input.Changed, "#editor Input")
    def _edited(self, event: Input.Changed) -> None:
        key = event.input.name or ""
        if key in self._edit_timers:
            self._edit_timers[key].stop()
        self._edit_timers[key] = self.set_timer(EDIT_DELAY_SECONDS, partial(self._apply_edit, event.input))

    @on(Input.Submitted, "#editor Input")
    def _submitted(self, event: Input.Submitted) -> None:
        timer = self._edit_timers.pop(event.input.name or "", None)
        if timer is not None:
            timer.stop()
        self._apply_edit(event.input)
        if not event.input.has_class("-refused"):
            # Hand the keys back to the app, so 's', 'x' or '1' act instead of being typed.
            self.query_one("#scenarios", SelectionList).focus()

    def action_leave_field(self) -> None:
        """Escape leaves an input field for the scenario list."""
        if isinstance(self.focused, Input):
            self.query_one("#scenarios", SelectionList).focus()

    def _apply_edit(self, field: Input) -> None:
        """Validate the value in place; if it is good, re-run the scenario with it."""
        if not self.is_running or not field.is_mounted:
            return
        path = self.current
        key = field.name
        if path is None or key is None or key not in self._editable:
            return
        message = self.query_one("#editor-message", Static)
        assumption: Assumption = self._editable[key]
        try:
            value = parse_number(field.value, assumption.integer)
            if not math.isfinite(value):
                raise ValueError("a finite number is needed")
            edits = {**self.edits.get(path, {}), key: value}
            apply_edits(path, edits)
        except ValueError as exc:
            self._refuse(field, message, f"{assumption.label}: {exc}")
            return
        except ScenarioError as exc:
            self._refuse(field, message, f"{assumption.label}: {exc.message}")
            return
        field.remove_class("-refused")
        previous = self.edits.get(path, {}).get(key, assumption.value)
        if value == previous:
            message.update(f"{assumption.label} = {_number_text(value)} (unchanged)")
            return
        self.edits[path] = edits
        message.update(f"{assumption.label} = {_number_text(value)}: re-running {self.entries[path].name}…")
        self._show_details()
        self.results.pop(path, None)  # the old numbers no longer describe this scenario
        self._start_run(path)
        if path not in self.selected:
            self.query_one("#scenarios", SelectionList).select(str(path))

    def _refuse(self, field: Input, message: Static, reason: str) -> None:
        field.add_class("-refused")
        message.update(Text(f"refused: {reason}", style="bold red"))

    def action_edit(self) -> None:
        self.query_one("#tabs", TabbedContent).active = "assumptions"
        inputs = self.query("#editor Input")
        if inputs:
            inputs.first().focus()

    # --- saving and exporting ------------------------------------------------------------
    def action_save_variant(self) -> None:
        path = self.current
        if path is None or not self.edits.get(path):
            self.notify("nothing to save: edit an assumption of the highlighted scenario first", timeout=5)
            return
        name = f"{self.entries[path].name} (edited)"
        try:
            saved = save_variant(path, self.edits[path], name)
        except OSError as exc:
            self.notify(f"cannot write the variant: {exc.strerror}", severity="error")
            return
        entry = load_entry(saved)
        self.entries[saved] = entry
        listing = self.query_one("#scenarios", SelectionList)
        listing.add_option(Selection(_prompt(entry), str(saved), False))
        if entry.scenario is not None:
            # Reuse the numbers only when they are those of the edited inputs; else run it.
            if path in self.results and path not in self.progress:
                self.results[saved] = self.results[path]
            listing.select(str(saved))
        self.notify(f"saved {saved}", timeout=6)

    def action_export(self) -> None:
        columns = [(p, e) for p, e in self._columns() if e is not None]
        if not columns:
            self.notify("nothing to export yet", timeout=4)
            return
        try:
            self.export_dir.mkdir(parents=True, exist_ok=True)
            header, rows = export_rows([self.entries[p].name for p, _ in columns], [e for _, e in columns])
            written = [write_csv_table(self.export_dir / "comparison.csv", header, rows)]
            tab = self.query_one("#tabs", TabbedContent).active
            if tab in (*CHARTS, "waterfall"):
                chart = self.query_one(f"#chart-{tab}", PlotextPlot)
                text = Text.from_ansi(chart.plt.build()).plain
                written.append(write_atomic(self.export_dir / f"chart-{tab}.txt", text))
        except OSError as exc:
            self.notify(f"cannot export to {self.export_dir}: {exc.strerror}", severity="error")
            return
        self.notify("exported " + ", ".join(str(p) for p in written), timeout=6)

    # --- navigation ----------------------------------------------------------------------
    def action_set_baseline(self) -> None:
        if self.current in self.selected:
            self.baseline = self.current
            self._refresh_table()
        else:
            self.notify("select the scenario (space) before making it the baseline", timeout=4)

    def action_show_tab(self, tab: str) -> None:
        self.query_one("#tabs", TabbedContent).active = tab

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """Errors a run did not anticipate are shown, never swallowed."""
        if event.worker.error is not None:
            self.notify(f"{event.worker.name}: {event.worker.error}", severity="error", timeout=10)


def _prompt(entry: Entry) -> Text:
    """One line per scenario: its name and, dimmed, the file it extends; broken files in red."""
    if entry.scenario is None:
        return Text(f"✗ {entry.path.stem} (invalid)", style="bold red")
    text = Text(entry.name)
    if entry.parent:
        text.append(f" ↳ {Path(entry.parent).stem}", style="dim")
    return text


def _number_text(value: float | int) -> str:
    return str(value) if isinstance(value, int) else f"{value:.15g}"


def _line(plt: Any, x: list[int], y: Any, label: str | None, marker: str | None = None, scale: float = 1) -> None:
    """Plot defined points only (plotext cannot draw NaN)."""
    points = [(m, float(v) * scale) for m, v in zip(x, y, strict=True) if math.isfinite(float(v))]
    if not points:
        return
    xs, ys = zip(*points, strict=True)
    kwargs: dict[str, Any] = {"marker": marker} if marker else {}
    if label:
        kwargs["label"] = label
    plt.plot(list(xs), list(ys), **kwargs)


def _fill_heatmap(table: DataTable[Any], values: Any, max_columns: int = 24) -> None:
    """Rows = cohorts, columns = months since start; cells coloured from red (0%) to green (100%)."""
    columns = min(values.shape[1], max_columns)
    table.add_column("cohort", key="cohort")
    for k in range(columns):
        table.add_column(f"+{k}", key=f"m{k}")
    for cohort in range(values.shape[0]):
        cells: list[Text | str] = [f"month {cohort}"]
        for k in range(columns):
            share = values[cohort, k]
            if not math.isfinite(share):
                cells.append("")
                continue
            clipped = max(0.0, min(1.0, share))
            red, green = int(200 * (1 - clipped)), int(160 * clipped)
            cells.append(Text(f"{share:4.0%}", style=f"white on rgb({red},{green},40)"))
        table.add_row(*cells)
