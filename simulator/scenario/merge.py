"""Deep merge of scenario tables, used by `extends` and by segment overrides."""

from __future__ import annotations

from typing import Any


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Return `base` with `override` merged in: tables merge key by key, anything else
    (numbers, strings, arrays) is replaced whole. Neither input is modified."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def set_dotted(data: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    """Return a copy of `data` with the entry at `dotted` set to `value`, creating tables on
    the way. A numeric part indexes an existing array ('timeline.0.month').

    Raises KeyError naming the dotted prefix that cannot be followed."""
    return _set(data, dotted.split("."), value, "")


def _set(node: Any, keys: list[str], value: Any, done: str) -> Any:
    key, rest = keys[0], keys[1:]
    here = f"{done}.{key}" if done else key
    if isinstance(node, list):
        if not key.isdigit() or int(key) >= len(node):
            raise KeyError(f"{here}: {done} has {len(node)} entries (index from 0)")
        entries = list(node)
        entries[int(key)] = _set(entries[int(key)], rest, value, here) if rest else value
        return entries
    if not isinstance(node, dict):
        raise KeyError(f"{here}: {done} is a single value, not a table")
    copy = dict(node)
    copy[key] = _set(copy.get(key, {}), rest, value, here) if rest else value
    return copy


def flatten_dotted(table: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested tables as dotted keys: {'a': {'b': 1}, 'c.d': 2} → {'a.b': 1, 'c.d': 2}.
    Lets a [sweep] table be written with quoted dotted keys or as nested tables."""
    flat: dict[str, Any] = {}
    for key, value in table.items():
        dotted = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            flat.update(flatten_dotted(value, dotted))
        else:
            flat[dotted] = value
    return flat
