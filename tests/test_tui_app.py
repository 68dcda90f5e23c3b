"""The terminal UI driven like a person would, with Textual's Pilot (no real terminal).

What is checked: the scenario list (bundled scenarios, parents, a broken file with its error),
selection and the baseline shaping the comparison table, assumption edits re-running a scenario
(and invalid values refused in place without a run), stale runs cancelled so only the latest
inputs are shown, saving a variant, export, help, and quitting while runs are still going.
Numbers on screen are compared with what `simulator.run` gives for the same inputs, so a table
that shows stale or wrong results fails.

pytest-asyncio is not installed: each test is a plain function around `asyncio.run`.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import threading
import time
import tomllib
from collections.abc import Awaitable, Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Markdown, SelectionList, Static, TabbedContent
from textual.worker import WorkerCancelled

import simulator
import tui.app
import tui.runs
from simulator.formatting import format_value
from simulator.runner.ensemble import Ensemble
from simulator.scenario import Scenario
from simulator.scenario.loading import parent_of
from simulator.scenario.models import EngineName
from tui.app import HelpScreen, PlgsimApp

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
TUI = DATA / "tui"
ALPHA = TUI / "alpha.toml"
BRAVO = TUI / "bravo.toml"
BROKEN = TUI / "broken.toml"
SIZE = (120, 40)
PRO = "pricing.plans.pro.price_per_seat"
STARTER = "pricing.plans.starter.price_per_seat"

Body = Callable[[PlgsimApp, Pilot[None]], Awaitable[None]]


# --- helpers -------------------------------------------------------------------------------
def drive(app: PlgsimApp, body: Body, wait: bool = True) -> None:
    """Run `app` headless, let its first runs finish (`wait`), run `body`, then quit the way
    the `q` key does (exit, which cancels workers and timers) before the harness tears down."""

    async def inner() -> None:
        async with app.run_test(size=SIZE) as pilot:
            if wait:
                await settle(app, pilot)
            await body(app, pilot)
            app.exit()
            await pilot.pause()

    asyncio.run(inner())


async def settle(app: PlgsimApp, pilot: Pilot[None]) -> None:
    """Wait for every run to finish (a cancelled one is fine; a failed one raises) and the
    screen to catch up."""
    while workers := list(app.workers):
        for worker in workers:
            with contextlib.suppress(WorkerCancelled):
                await worker.wait()
        # A finished worker leaves the list in a message the app handles: let it run, or a
        # run that ends before this loop looks at it would keep the loop spinning.
        await pilot.pause()
    await pilot.pause()


@cache
def direct(path: Path, edits: tuple[tuple[str, float], ...] = ()) -> dict[str, float]:
    """The KPIs `simulator.run` gives for `path` with `edits` (one replication, scenario seed)."""
    return dict(simulator.run(simulator.load_scenario(path, dict(edits) or None)).kpis)


def money(value: float) -> str:
    return format_value(value, "money", "USD")


def table(app: PlgsimApp) -> DataTable[Any]:
    return app.query_one("#comparison", DataTable)


def column_labels(app: PlgsimApp) -> list[str]:
    return [column.label.plain for column in table(app).columns.values()]


def cell(app: PlgsimApp, row: str, path: Path) -> str:
    return str(table(app).get_cell(row, str(path)))


def plain(renderable: object) -> str:
    return getattr(renderable, "plain", None) or str(renderable)


def prompts(app: PlgsimApp) -> dict[str, str]:
    """Option value (the path) → the text shown in the scenario list."""
    listing = app.query_one("#scenarios", SelectionList)
    options = (listing.get_option_at_index(i) for i in range(listing.option_count))
    return {str(option.value): plain(option.prompt) for option in options}


def message(app: PlgsimApp) -> str:
    return str(app.query_one("#editor-message", Static).render())


def details(app: PlgsimApp) -> str:
    return str(app.query_one("#details", Static).render())


def field(app: PlgsimApp, key: str) -> Input:
    return next(i for i in app.query("#editor Input").results(Input) if i.name == key)


async def submit(pilot: Pilot[None], input_: Input, text: str) -> None:
    """Type `text` into an assumption field (replacing its value) and press Enter."""
    input_.value = text
    input_.focus()
    await pilot.press("enter")


async def highlight(app: PlgsimApp, pilot: Pilot[None], path: Path, keys: bool = False) -> None:
    """Move the scenario list's highlight to `path`: with the arrow keys (`keys`), or directly
    (quicker: each highlight rebuilds the editor and charts)."""
    listing = app.query_one("#scenarios", SelectionList)
    listing.focus()
    target = list(prompts(app)).index(str(path))
    if keys:
        await pilot.pause()
        for _ in range(len(prompts(app))):
            if listing.highlighted == target:
                break
            await pilot.press("down" if listing.highlighted is None or listing.highlighted < target else "up")
    else:
        listing.highlighted = target
        await pilot.pause()
    assert listing.highlighted == target
    assert app.current == path


def spy_notifications(app: PlgsimApp) -> list[tuple[str, str]]:
    """Record (message, severity) of every notification the app shows."""
    seen: list[tuple[str, str]] = []
    notify = app.notify

    def record(text: str, **kwargs: Any) -> None:
        seen.append((text, kwargs.get("severity", "information")))
        notify(text, **kwargs)

    app.notify = record  # type: ignore[method-assign]
    return seen


def slowed_projections(
    monkeypatch: pytest.MonkeyPatch, seconds_per_month: float, runs: list[list[float]] | None = None
) -> None:
    """Make the app's runs pause after each simulated month, so that a test can act while they
    are still going (the engine alone takes a fraction of a second on these scenarios); each
    run's progress reports are appended to `runs`, one list per run, when given."""

    def slowed_project(
        scenario: Scenario,
        reps: int,
        on_progress: Callable[[float], None],
        workers: int | None = None,
        engine: EngineName | None = None,
    ) -> Ensemble:
        shares: list[float] = []
        if runs is not None:
            runs.append(shares)

        def progress(share: float) -> None:
            shares.append(share)
            time.sleep(seconds_per_month)
            on_progress(share)

        return tui.runs.project(scenario, reps, progress, workers, engine)

    monkeypatch.setattr(tui.app, "project", slowed_project)


# --- (a) the bundled scenarios -------------------------------------------------------------
def test_starts_on_the_bundled_scenarios_and_quits_without_waiting_for_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 36 months: 10.8 s a run, so the runs are still going when the test quits, and waiting for
    # them would show.
    slowed_projections(monkeypatch, 0.3)
    files = sorted((ROOT / "scenarios").glob("*.toml"))
    names = {simulator.load_scenario(f).name for f in files}
    assert len(files) == 8
    app = PlgsimApp([ROOT / "scenarios"])
    threads_before = set(threading.enumerate())

    async def body(app: PlgsimApp, pilot: Pilot[None]) -> None:
        shown = prompts(app)
        assert set(shown) == {str(f) for f in files}
        for f in files:
            assert shown[str(f)].startswith(simulator.load_scenario(f).name)
        assert {text.split(" ↳ ")[0] for text in shown.values()} == names
        assert app.selected == files[:2], "a folder starts with its first two scenarios selected"
        assert app.progress.keys() == set(files[:2]), "both are running"
        first, second = (app.entries[f].name for f in files[:2])
        assert column_labels(app) == ["metric", f"{first} (baseline)", second]

    start = time.monotonic()
    drive(app, body, wait=False)
    elapsed = time.monotonic() - start
    # asyncio.run joins the worker threads, so returning well before a slowed run's 10.8 s means
    # the cancelled runs stopped at their next month.
    assert elapsed < 8, f"quitting took {elapsed:.1f} s: runs were not cancelled"
    assert app.results == {}, "no run finished"
    lingering = [t for t in set(threading.enumerate()) - threads_before if t.is_alive()]
    assert lingering == [], f"threads still alive after quitting: {lingering}"


# --- (b), (c), (i) the comparison table, selection, baseline, export ------------------------
def test_comparison_table_export_selection_and_baseline(tmp_path: Path) -> None:
    out = tmp_path / "export"
    app = PlgsimApp([TUI], export_dir=out)

    async def body(app: PlgsimApp, pilot: Pilot[None]) -> None:
        # (b) both usable scenarios of a folder are selected; KPI rows match the simulator.
        assert app.selected == [ALPHA, BRAVO]
        assert column_labels(app) == ["metric", "alpha (baseline)", "bravo"]
        labels = [str(table(app).get_cell(key, "metric")) for key in table(app).rows]
        assert "NRR, trailing 12 months" in labels
        assert "CAC payback (formula)" in labels
        assert "MRR, month 12" in labels
        a, b = direct(ALPHA), direct(BRAVO)
        assert cell(app, "mrr@m12", ALPHA) == money(a["mrr@m12"])
        delta = format_value(b["mrr@m12"] - a["mrr@m12"], "money", "USD", signed=True)
        assert cell(app, "mrr@m12", BRAVO) == f"{money(b['mrr@m12'])} (Δ {delta})"
        assert cell(app, "nrr_12m", ALPHA) == format_value(a["nrr_12m"], "rate", "USD")
        assert cell(app, "cac_payback_months", ALPHA) == format_value(a["cac_payback_months"], "months", "USD")
        # The best value of a row is bold green, in the right direction.
        for key, higher_is_better in (("mrr@m12", True), ("arr@horizon", True), ("blended_cac", False)):
            assert a[key] != b[key], f"{key}: the rows compared need different values"
            best = ALPHA if (a[key] > b[key]) == higher_is_better else BRAVO
            other = BRAVO if best == ALPHA else ALPHA
            assert "green" in str(table(app).get_cell(key, str(best)).style), key
            assert "green" not in str(table(app).get_cell(key, str(other)).style), key
        assert str(app.query_one("#status", Static).render()).startswith("2 selected")

        # (i) x exports the table; on a chart tab also the chart as text.
        await pilot.press("x")
        assert (out / "comparison.csv").is_file()
        assert not (out / "chart-growth.txt").exists(), "no chart on the comparison tab"
        await pilot.press("2", "x", "1")

        # (c) space unselects and selects; b moves the baseline.
        await highlight(app, pilot, ALPHA, keys=True)
        await pilot.press("space")
        assert app.selected == [BRAVO]
        assert column_labels(app) == ["metric", "bravo (baseline)"]
        await pilot.press("space")
        assert app.selected == [ALPHA, BRAVO]
        assert column_labels(app) == ["metric", "alpha", "bravo (baseline)"]
        await pilot.press("b")
        assert column_labels(app) == ["metric", "alpha (baseline)", "bravo"]
        assert "Δ" in cell(app, "mrr@m12", BRAVO) and "Δ" not in cell(app, "mrr@m12", ALPHA)
        await highlight(app, pilot, BRAVO, keys=True)
        await pilot.press("b")
        assert column_labels(app) == ["metric", "alpha", "bravo (baseline)"]
        assert "Δ" in cell(app, "mrr@m12", ALPHA) and "Δ" not in cell(app, "mrr@m12", BRAVO)
        await pilot.press("space")
        assert column_labels(app) == ["metric", "alpha (baseline)"]
        await highlight(app, pilot, ALPHA, keys=True)
        await pilot.press("space")
        assert app.selected == []
        assert column_labels(app) == ["select scenarios with space"]
        assert app.progress == {}, "selecting again what has run does not run it again"

    drive(app, body)
    with (out / "comparison.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["metric", "alpha p50", "alpha p10", "alpha p90", "bravo p50", "bravo p10", "bravo p90"]
    by_key = {row[0]: row for row in rows[1:]}
    assert {"mrr@m12", "nrr_12m", "cac_payback_months"} <= by_key.keys()
    assert float(by_key["mrr@m12"][1]) == direct(ALPHA)["mrr@m12"]
    assert float(by_key["mrr@m12"][4]) == direct(BRAVO)["mrr@m12"]
    chart = (out / "chart-growth.txt").read_text(encoding="utf-8")
    assert "Active users" in chart and "alpha" in chart and "bravo" in chart


# --- (d), (e) editing assumptions ----------------------------------------------------------
def test_invalid_values_are_refused_in_place_and_valid_edits_rerun() -> None:
    app = PlgsimApp([TUI])

    async def body(app: PlgsimApp, pilot: Pilot[None]) -> None:
        results = dict(app.results)
        before_mrr, before_nrr = cell(app, "mrr@m12", ALPHA), cell(app, "nrr_12m", ALPHA)
        await pilot.press("e")
        assert app.query_one("#tabs", TabbedContent).active == "assumptions"
        assert isinstance(app.focused, Input) and app.focused.name == STARTER
        assert app.focused.value == "10"

        # (e) refused in place: marked field, a 'refused' message, no run, no edit.
        for key, text, reason in (
            (PRO, "-5", "≥ 0"),
            (PRO, "abc", "a number is needed"),
            (PRO, "nan", "finite"),
            ("onboarding.self_serve.activation_probability", "1.5", "1"),
        ):
            input_ = field(app, key)
            await submit(pilot, input_, text)
            await pilot.pause()
            assert input_.has_class("-refused"), (key, text)
            assert message(app).startswith("refused"), message(app)
            assert reason in message(app)
            assert app.progress == {}, f"{text!r} started a run"
            assert all(app.results[p] is results[p] for p in results), f"{text!r} replaced a result"
            assert app.edits.get(ALPHA, {}) == {}
        assert cell(app, "mrr@m12", ALPHA) == before_mrr
        await submit(pilot, field(app, PRO), "20")  # back to the file's value: valid, nothing to run
        assert not field(app, PRO).has_class("-refused")
        assert app.progress == {} and app.edits.get(ALPHA, {}) == {}

        # (d) e focuses the first field (the starter price); typing replaces it; Enter re-runs.
        app.query_one("#scenarios", SelectionList).focus()  # in a field, e would be text
        await pilot.press("e", "1", "5", "enter")
        assert field(app, STARTER).value == "15"
        await settle(app, pilot)
        assert app.edits == {ALPHA: {STARTER: 15.0}}
        assert app.results[ALPHA] is not results[ALPHA]
        assert app.results[ALPHA].scenario.pricing.plans["starter"].price_per_seat == 15.0
        after = direct(ALPHA, ((STARTER, 15.0),))
        assert cell(app, "mrr@m12", ALPHA) == money(after["mrr@m12"]) != before_mrr
        assert cell(app, "nrr_12m", ALPHA) == format_value(after["nrr_12m"], "rate", "USD") != before_nrr
        assert "edited: 1 change(s)" in details(app)
        assert app.results[BRAVO] is results[BRAVO], "bravo untouched"

    drive(app, body)


# --- (f) save as variant -------------------------------------------------------------------
def test_save_as_variant_writes_a_file_that_extends_the_original_and_lists_it(
    tmp_path: Path, tui_scenarios: Path
) -> None:
    folder = tui_scenarios
    alpha = folder / "alpha.toml"
    app = PlgsimApp([folder])

    async def body(app: PlgsimApp, pilot: Pilot[None]) -> None:
        await highlight(app, pilot, alpha)
        await pilot.press("s")
        assert not list(folder.glob("*-variant*.toml")), "nothing to save before an edit"
        await submit(pilot, field(app, PRO), "30")
        await settle(app, pilot)
        app.query_one("#scenarios", SelectionList).focus()  # 's' typed in a field is text
        await pilot.press("s")
        await pilot.pause()
        saved = folder / "alpha-variant.toml"
        assert saved.is_file()
        assert prompts(app)[str(saved)] == "alpha (edited) ↳ alpha"
        assert saved in app.selected
        assert column_labels(app)[-1] == "alpha (edited)"
        expected = direct(ALPHA, ((PRO, 30.0),))["mrr@m12"]  # the same scenario but its name
        assert cell(app, "mrr@m12", saved).startswith(money(expected))

    drive(app, body)
    saved = folder / "alpha-variant.toml"
    assert tomllib.loads(saved.read_text(encoding="utf-8")) == {
        "extends": "alpha.toml",
        "name": "alpha (edited)",
        "pricing": {"plans": {"pro": {"price_per_seat": 30.0}}},
    }
    assert parent_of(saved) == "alpha.toml"
    variant = simulator.load_scenario(saved)
    assert variant.pricing.plans["pro"].price_per_seat == 30.0
    assert variant.model_dump(exclude={"name"}) == simulator.load_scenario(alpha, {PRO: 30.0}).model_dump(
        exclude={"name"}
    )
    assert not list(TUI.glob("*-variant*.toml")), "the repository's test data was modified"


def test_a_variant_saved_while_its_edit_is_still_running_shows_the_edited_numbers(
    tmp_path: Path, tui_scenarios: Path
) -> None:
    """Save right after an edit, before its run is done: the variant's column must not show the
    result of the scenario before the edit."""
    folder = tui_scenarios
    alpha = folder / "alpha.toml"
    app = PlgsimApp([alpha])  # one file: only it runs

    async def body(app: PlgsimApp, pilot: Pilot[None]) -> None:
        input_ = field(app, PRO)
        input_.value = "30"
        await input_.action_submit()
        deadline = time.monotonic() + 10
        while alpha not in app.progress:
            assert time.monotonic() < deadline, "the edit started no run"
            await asyncio.sleep(0.002)
        app.action_save_variant()  # as 's' does, while the edit's run is going
        await settle(app, pilot)
        saved = folder / "alpha-variant.toml"
        expected = direct(ALPHA, ((PRO, 30.0),))["mrr@m12"]  # the variant's scenario but its name
        assert direct(ALPHA)["mrr@m12"] != expected
        assert cell(app, "mrr@m12", saved).startswith(money(expected)), (
            f"variant shows {cell(app, 'mrr@m12', saved)}, its own run gives {money(expected)}"
        )

    drive(app, body)


def test_s_right_after_an_edit_saves_rather_than_typing_into_the_field(tmp_path: Path, tui_scenarios: Path) -> None:
    """The documented flow: e, type a value, Enter, s. The s key must save the variant."""
    folder = tui_scenarios
    app = PlgsimApp([folder / "alpha.toml"])

    async def body(app: PlgsimApp, pilot: Pilot[None]) -> None:
        await pilot.press("e", "1", "5", "enter")
        assert app.edits == {folder / "alpha.toml": {STARTER: 15.0}}
        await pilot.press("s")
        await pilot.pause()
        assert field(app, STARTER).value == "15", "the s went into the price field"
        assert (folder / "alpha-variant.toml").is_file()

    drive(app, body)


# --- (g), (h) a broken scenario and help -----------------------------------------------------
def test_broken_scenario_is_listed_with_its_error_and_help_opens_and_closes() -> None:
    app = PlgsimApp([ALPHA, BROKEN])  # files: only alpha runs
    notes = spy_notifications(app)

    async def body(app: PlgsimApp, pilot: Pilot[None]) -> None:
        # (g) listed with a mark; highlighted, its error is shown; selecting it is refused.
        assert "✗" in prompts(app)[str(BROKEN)]
        assert "✗" not in prompts(app)[str(ALPHA)]
        await highlight(app, pilot, BROKEN, keys=True)
        assert "acceptance_rat" in details(app)
        assert "did you mean 'acceptance_rate'" in details(app)
        assert "extends alpha.toml" in details(app)
        assert "acceptance_rat" in message(app)
        assert not app.query("#editor Input"), "nothing to edit in a broken file"
        labels = column_labels(app)
        await pilot.press("space")
        await pilot.pause()
        assert app.is_running
        assert app.selected == [ALPHA]
        assert BROKEN not in app.progress
        assert column_labels(app) == labels
        assert any("cannot run" in text and "acceptance_rat" in text and sev == "error" for text, sev in notes)
        await highlight(app, pilot, ALPHA)
        assert app.query("#editor Input"), "still usable"

        # (h) ? opens the help listing the keys; escape closes it; q there closes only the help.
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        source = app.screen.query_one(Markdown).source
        for key, action in (
            ("space", "select or unselect"),
            ("b", "baseline"),
            ("e", "edit"),
            ("s", "save"),
            ("x", "export"),
            ("?", "help"),
            ("q", "quit"),
        ):
            assert f"| {key} | " in source and action in source, key
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)
        await pilot.press("question_mark", "q")
        assert not isinstance(app.screen, HelpScreen)
        assert app.is_running

    drive(app, body)


# --- (j) stale runs ------------------------------------------------------------------------
def test_a_newer_edit_cancels_the_stale_run_and_only_the_final_inputs_are_shown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    runs: list[list[float]] = []  # the progress each run reported, in the order they started
    # Slowed, so that the first edit's run is still going when the test edits again.
    slowed_projections(monkeypatch, 0.05, runs)
    app = PlgsimApp([ALPHA])
    delivered: list[Ensemble] = []

    async def body(app: PlgsimApp, pilot: Pilot[None]) -> None:
        on_result = app._on_result

        def spy(path: Path, ensemble: Ensemble) -> None:
            delivered.append(ensemble)
            on_result(path, ensemble)

        app._on_result = spy  # type: ignore[method-assign]
        first = field(app, PRO)
        first.value = "30"
        await first.action_submit()
        # Wait until the first edit's run is under way (but far from done), then edit again.
        deadline = time.monotonic() + 10
        while not 0 < app.progress.get(ALPHA, 0) < 0.5:
            assert time.monotonic() < deadline, "the first edit's run did not start"
            await asyncio.sleep(0.002)
        second = field(app, STARTER)
        second.value = "15"
        await second.action_submit()
        await settle(app, pilot)
        both = direct(ALPHA, ((PRO, 30.0), (STARTER, 15.0)))
        only_first = direct(ALPHA, ((PRO, 30.0),))
        assert both["mrr@m12"] != only_first["mrr@m12"]
        assert app.edits == {ALPHA: {PRO: 30.0, STARTER: 15.0}}
        assert cell(app, "mrr@m12", ALPHA) == money(both["mrr@m12"])
        assert ALPHA not in app.progress

    drive(app, body)
    assert len(runs) == 3, "the first run, the first edit's, the second edit's"
    initial, stale, final = runs
    assert initial[-1] == final[-1] == 1.0
    assert stale and stale[-1] < 1.0, f"the stale run went on to the horizon: {stale}"
    assert len(delivered) == 1, f"{len(delivered)} results shown after the edits: the stale one too"
    plans = delivered[0].scenario.pricing.plans
    assert (plans["pro"].price_per_seat, plans["starter"].price_per_seat) == (30.0, 15.0)


def test_typing_in_two_fields_quickly_keeps_both_edits() -> None:
    """A value typed in one field, then another typed in a second field within the pause before
    a run: the first field shows its new value, so the scenario must use it."""
    app = PlgsimApp([ALPHA])

    async def body(app: PlgsimApp, pilot: Pilot[None]) -> None:
        field(app, STARTER).value = "15"  # typed, not submitted
        field(app, PRO).value = "30"  # typed in the next field right after
        await pilot.pause(0.6)  # longer than the typing pause before a run
        await settle(app, pilot)
        assert field(app, STARTER).value == "15" and field(app, PRO).value == "30"
        assert app.edits == {ALPHA: {STARTER: 15.0, PRO: 30.0}}

    drive(app, body, wait=False)


# --- edits of a scenario that is not selected -----------------------------------------------
def test_editing_an_unselected_scenario_that_ran_before_reruns_it() -> None:
    """Unselect a scenario after it ran, edit it: the edit selects it again and must show the
    edited numbers, not the result from before the edit."""
    app = PlgsimApp([ALPHA])

    async def body(app: PlgsimApp, pilot: Pilot[None]) -> None:
        await highlight(app, pilot, ALPHA)
        await pilot.press("space")
        assert app.selected == []
        await submit(pilot, field(app, PRO), "30")
        await settle(app, pilot)
        assert app.selected == [ALPHA], "the edit selects the scenario again"
        edited = direct(ALPHA, ((PRO, 30.0),))
        assert direct(ALPHA)["mrr@m12"] != edited["mrr@m12"]
        assert cell(app, "mrr@m12", ALPHA).startswith(money(edited["mrr@m12"])), (
            f"shows {cell(app, 'mrr@m12', ALPHA)}, the edited scenario gives {money(edited['mrr@m12'])}"
        )

    drive(app, body)
