"""Save an edited scenario as a variant: a new file that `extends` the original and holds only
the changed keys, so the original stays the single source of everything else."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tomli_w

from simulator.scenario.merge import set_dotted


def variant_path(original: Path) -> Path:
    """A free file name beside `original`: NAME-variant.toml, NAME-variant-2.toml, …"""
    candidate = original.with_name(f"{original.stem}-variant.toml")
    n = 2
    while candidate.exists():
        candidate = original.with_name(f"{original.stem}-variant-{n}.toml")
        n += 1
    return candidate


def save_variant(original: Path, edits: dict[str, Any], name: str) -> Path:
    """Write the variant file and return its path. It lives beside the original, so the
    relative `extends` resolves wherever the folder is moved."""
    table: dict[str, Any] = {"extends": original.name, "name": name}
    for key, value in edits.items():
        table = set_dotted(table, key, value)
    path = variant_path(original)
    header = f"# A variant of {original.name}: only the keys changed in the terminal UI.\n"
    path.write_text(header + tomli_w.dumps(table), encoding="utf-8")
    return path
