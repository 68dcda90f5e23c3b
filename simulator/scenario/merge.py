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
    """Return a copy of `data` with the table entry at `dotted` (e.g. 'pricing.plans.pro.price_per_seat')
    set to `value`, creating tables on the way."""
    keys = dotted.split(".")
    override: dict[str, Any] = {keys[-1]: value}
    for key in reversed(keys[:-1]):
        override = {key: override}
    return deep_merge(data, override)
