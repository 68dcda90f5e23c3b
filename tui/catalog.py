"""The scenarios the terminal UI shows: every file found, loaded or with its error."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from simulator.runner.batch import scenario_files
from simulator.scenario import Scenario, ScenarioError, load_scenario
from simulator.scenario.loading import parent_of


@dataclass(frozen=True)
class Entry:
    """One scenario file: its scenario, or why it cannot be used."""

    path: Path
    scenario: Scenario | None
    error: str = ""

    @property
    def name(self) -> str:
        return self.scenario.name if self.scenario is not None else self.path.stem

    @property
    def parent(self) -> str | None:
        """The file this one `extends`, as written in it."""
        return parent_of(self.path)


def load_entry(path: Path) -> Entry:
    """Load one file; a broken file becomes an entry with its validation error, never a crash."""
    try:
        return Entry(path, load_scenario(path))
    except ScenarioError as exc:
        return Entry(path, None, str(exc))


def discover(paths: Sequence[Path]) -> list[Entry]:
    """Every scenario file in `paths` (files, or folders of *.toml files), in order."""
    return [load_entry(path) for path in scenario_files(paths)]
