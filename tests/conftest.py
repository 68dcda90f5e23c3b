"""Shared fixtures: the project's paths, the CLI, scenario files, numba's allocation counts."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
"""The project root (holds pyproject.toml and scenarios/)."""

DATA = Path(__file__).resolve().parent / "data"
SCENARIOS = ROOT / "scenarios"


@pytest.fixture(scope="session", autouse=True)
def compiled_fast_engine() -> None:
    """Compile the fast engine once, before any test starts plgsim in a subprocess or a worker
    pool: they then load the cached machine code instead of each compiling it anew."""
    from simulator import load_scenario, run

    run(load_scenario(DATA / "tiny.toml"), months=2, engine="fast")


@pytest.fixture
def compiled_memory() -> Iterator[Callable[[], int]]:
    """A function giving the memory blocks numba's runtime holds now (allocated less freed,
    after collecting garbage), counted while the test runs."""
    import gc

    from numba.core.runtime import _nrt_python, rtsys

    def live() -> int:
        gc.collect()
        stats = rtsys.get_allocation_stats()
        return int(stats.mi_alloc - stats.mi_free)

    was_on = _nrt_python.memsys_stats_enabled()
    _nrt_python.memsys_enable_stats()
    yield live
    if not was_on:
        _nrt_python.memsys_disable_stats()


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


@pytest.fixture(scope="session")
def scenarios_dir() -> Path:
    return SCENARIOS


@pytest.fixture(scope="session")
def plgsim() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run the installed `plgsim` console script in a subprocess (cwd: the project root).

    Fails (never skips) when the console script is not on PATH: it is part of what is tested.
    """
    exe = shutil.which("plgsim")
    assert exe is not None, "the `plgsim` console script is not on PATH (pip install -e .)"
    env = {**os.environ, "COLUMNS": "160", "NO_COLOR": "1", "TERM": "dumb"}

    def run(*args: str | Path, cwd: Path = ROOT, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [exe, *map(str, args)],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            encoding="utf-8",
            timeout=timeout,
        )

    return run


@pytest.fixture
def tui_scenarios(tmp_path: Path) -> Path:
    """tests/data/tui copied into tmp_path (alpha extends tiny.toml by absolute path), so tests
    that save variants never touch the repository."""
    folder = tmp_path / "scenarios"
    folder.mkdir()
    for source in (DATA / "tui").glob("*.toml"):
        shutil.copy(source, folder / source.name)
    alpha = folder / "alpha.toml"
    text = alpha.read_text(encoding="utf-8")
    assert 'extends = "../tiny.toml"' in text
    alpha.write_text(text.replace('"../tiny.toml"', f'"{(DATA / "tiny.toml").as_posix()}"'), encoding="utf-8")
    return folder
