"""Snapshots of the terminal UI: the main screen (scenario list, comparison table, status line)
and the help screen, at 120×40 on tests/data/tui.

A layout or formatting change shows up as a diff against the SVGs checked in under
tests/__snapshots__/; accept an intended change with `pytest tests/test_tui_snapshots.py
--snapshot-update`. The pictures are stable: every run finishes before the screenshot (runs
are seeded, so the numbers are the same each time), the header has no clock, and nothing
on screen depends on the machine (file names, not paths).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from tui.app import PlgsimApp

TUI = Path(__file__).resolve().parent / "data" / "tui"
SIZE = (120, 40)

SnapCompare = Callable[..., bool]


async def runs_done(pilot: Pilot[Any]) -> None:
    """Wait for both scenarios' runs: the table shows numbers, not '…', and no progress."""
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    app = pilot.app
    assert isinstance(app, PlgsimApp)
    assert app.progress == {} and set(app.results) == set(app.selected) and len(app.selected) == 2


async def runs_done_then_help(pilot: Pilot[Any]) -> None:
    await runs_done(pilot)
    await pilot.press("question_mark")


def test_main_screen(snap_compare: SnapCompare) -> None:
    assert snap_compare(PlgsimApp([TUI]), terminal_size=SIZE, run_before=runs_done)


def test_help_screen(snap_compare: SnapCompare) -> None:
    assert snap_compare(PlgsimApp([TUI]), terminal_size=SIZE, run_before=runs_done_then_help)
