"""Progress output: a bar on a terminal, plain lines elsewhere, nothing with --quiet."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from simulator.runner.replications import Progress
from tui.progress import progress_reporter


def _drive(console: Console, quiet: bool = False) -> None:
    with progress_reporter(console, "baseline", quiet) as update:
        for done in range(1, 5):
            update(Progress(done, 4, items_done=done // 2, items_total=2))


def test_terminal_gets_a_bar_with_counts() -> None:
    buffer = io.StringIO()
    _drive(Console(file=buffer, force_terminal=True, width=120))
    text = buffer.getvalue()
    assert "baseline" in text and "4/4" in text and "items 2/2" in text


def test_no_terminal_gets_plain_lines_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    buffer = io.StringIO()
    _drive(Console(file=buffer, force_terminal=False))
    err = capsys.readouterr().err.splitlines()
    assert buffer.getvalue() == "", "no bar drawing codes off a terminal"
    assert err[-1] == "baseline: replications 4/4, items 2/2"
    assert all("\x1b" not in line for line in err)


def test_quiet_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    buffer = io.StringIO()
    _drive(Console(file=buffer, force_terminal=True), quiet=True)
    assert buffer.getvalue() == "" and capsys.readouterr().err == ""
