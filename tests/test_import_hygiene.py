"""The headless `simulator` package never imports a terminal UI library.

Checked in fresh interpreters, so that modules imported by other tests (or by pytest
plugins) in this process cannot hide or fake an import. The positive control proves the
check sees imports at all: `tui.cli` must load `rich` and `typer`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
UI_LIBRARIES = ("textual", "rich", "typer")

PROBE = r"""
import importlib, json, pkgutil, sys

target = sys.argv[1]
walk = sys.argv[2] == "walk"
module = importlib.import_module(target)
imported = [target]
if walk:
    def fail(name):
        raise ImportError(f"cannot import {name}")
    for info in pkgutil.walk_packages(module.__path__, target + ".", onerror=fail):
        importlib.import_module(info.name)
        imported.append(info.name)
ui = sorted(
    name for name in sys.modules
    if name.split(".")[0] in ("textual", "rich", "typer")
)
print(json.dumps({"imported": imported, "ui": ui, "file": module.__file__}))
"""


def _probe(target: str, walk: bool) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, target, "walk" if walk else "one"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_simulator_and_all_its_modules_import_no_ui_library() -> None:
    result = _probe("simulator", walk=True)
    assert Path(result["file"]).resolve() == (ROOT / "simulator" / "__init__.py").resolve()
    imported = set(result["imported"])
    # The walk really covered the package, subpackages included.
    on_disk = {
        ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for p in (ROOT / "simulator").rglob("*.py")
    }
    assert on_disk <= imported, f"not imported: {sorted(on_disk - imported)}"
    assert {"simulator.scenario.loading", "simulator.engines.simpy_engine", "simulator.api"} <= imported
    assert result["ui"] == [], f"simulator pulled in UI modules: {result['ui']}"


def test_the_check_sees_imports_tui_cli_loads_rich() -> None:
    result = _probe("tui.cli", walk=False)
    top = {name.split(".")[0] for name in result["ui"]}
    assert "rich" in top
    assert "typer" in top
    assert set(top) <= set(UI_LIBRARIES)
