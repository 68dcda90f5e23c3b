"""Progress of long runs: a rich progress bar on a terminal, plain lines otherwise.

Plain lines go to stderr at most every few seconds (and at each finished batch item), so a
log of an overnight batch stays readable; `--quiet` silences both.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.progress import Progress as RichProgress

from simulator.runner.replications import Progress, ProgressCallback

LINE_INTERVAL_SECONDS = 5.0


@contextmanager
def progress_reporter(console: Console, title: str, quiet: bool = False) -> Iterator[ProgressCallback]:
    """A callback showing `Progress` updates the right way for where output goes."""
    if quiet:
        yield lambda progress: None
    elif console.is_terminal:
        with _bar(console, title) as callback:
            yield callback
    else:
        yield _lines(title)


@contextmanager
def _bar(console: Console, title: str) -> Iterator[ProgressCallback]:
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("replications {task.fields[items]}"),
        TimeElapsedColumn(),
        TextColumn("left"),
        TimeRemainingColumn(),
    )
    with RichProgress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(title, total=None, items="")

        def update(progress: Progress) -> None:
            items = f"· items {progress.items_done}/{progress.items_total}" if progress.items_total else ""
            bar.update(task, completed=progress.done, total=progress.total, items=items)

        yield update


def _lines(title: str) -> ProgressCallback:
    return _LinePrinter(title)


class _LinePrinter:
    """One line per finished batch item, else at most every LINE_INTERVAL_SECONDS, and the last."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.printed_at = -LINE_INTERVAL_SECONDS
        self.items_done = 0

    def __call__(self, progress: Progress) -> None:
        now = time.monotonic()
        finished_item = progress.items_done != self.items_done
        last = progress.done >= progress.total
        if not (last or finished_item or now - self.printed_at >= LINE_INTERVAL_SECONDS):
            return
        self.printed_at, self.items_done = now, progress.items_done
        items = f", items {progress.items_done}/{progress.items_total}" if progress.items_total else ""
        print(f"{self.title}: replications {progress.done}/{progress.total}{items}", file=sys.stderr, flush=True)
