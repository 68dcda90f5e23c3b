"""Sweep grids: parsing `KEY=SPEC` assignments and expanding axes into grid points.

Pure functions: no files, no scenarios. A spec is a range `start:stop:step` (stop included
when the steps land on it), a list `a,b,c`, or one value; a `[sweep]` table in a scenario
file may also give a TOML array. Numbers are stepped in decimal, so 0.1:0.3:0.1 gives
exactly 0.1, 0.2, 0.3.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation

Value = int | float | bool | str
Axes = dict[str, list[Value]]

MAX_POINTS = 10_000
"""A grid larger than this is almost certainly a typo in a step."""

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*\Z")


class GridError(ValueError):
    """A sweep specification that cannot be expanded; the message names the key."""


def parse_assignment(text: str) -> tuple[str, list[Value]]:
    """`'virality.invites_per_user=0.5,1,2'` → `('virality.invites_per_user', [0.5, 1, 2])`."""
    key, sep, spec = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise GridError(f"{text!r}: write KEY=VALUES, e.g. virality.invites_per_user=0.5,1,2")
    return key, parse_values(key, spec.strip())


def parse_values(key: str, spec: str | Value | Sequence[Value]) -> list[Value]:
    """The values of one axis from a spec string, a list given as is, or one value."""
    if not _KEY.match(key):
        raise GridError(f"{key!r}: not a dotted scenario key (e.g. pricing.plans.pro.price_per_seat)")
    if isinstance(spec, bool | int | float):
        return [spec]
    if not isinstance(spec, str):
        values = list(spec)
        if not values:
            raise GridError(f"{key}: the list of values is empty")
        return values
    if not spec:
        raise GridError(f"{key}: no values given")
    if ":" in spec:
        return _range(key, spec)
    parts = [part.strip() for part in spec.split(",")]
    if "" in parts:
        raise GridError(f"{key}: an empty value in {spec!r} (a stray comma?)")
    return [parse_scalar(part) for part in parts]


def parse_scalar(text: str) -> Value:
    """A value as a person types it: integer, number, true/false, or else text."""
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _range(key: str, spec: str) -> list[Value]:
    parts = spec.split(":")
    if len(parts) != 3:
        raise GridError(f"{key}: a range is START:STOP:STEP, got {spec!r}")
    try:
        start, stop, step = (Decimal(p.strip()) for p in parts)
    except InvalidOperation:
        raise GridError(f"{key}: range bounds and step must be numbers, got {spec!r}") from None
    if not all(d.is_finite() for d in (start, stop, step)):
        raise GridError(f"{key}: range bounds and step must be finite numbers, got {spec!r}")
    if step == 0 or (stop - start) * step < 0:
        raise GridError(f"{key}: the step {step} never gets from {start} to {stop}")
    count = int((stop - start) / step) + 1
    if count > MAX_POINTS:
        raise GridError(f"{key}: {count} values; at most {MAX_POINTS} per sweep")
    integral = all("." not in p and "e" not in p.lower() for p in parts)
    values = [start + i * step for i in range(count)]
    return [int(v) if integral else float(v) for v in values]


def expand_grid(axes: Mapping[str, Sequence[Value]]) -> list[dict[str, Value]]:
    """Every combination of the axes' values, the first axis varying slowest."""
    if not axes:
        raise GridError("a sweep needs at least one axis (--set KEY=VALUES)")
    total = 1
    for key, values in axes.items():
        if not values:
            raise GridError(f"{key}: no values")
        total *= len(values)
    if total > MAX_POINTS:
        raise GridError(f"the grid has {total:,} points; at most {MAX_POINTS:,}")
    keys = list(axes)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*axes.values())]


def describe_point(params: Mapping[str, Value]) -> str:
    """`'a=1; b=0.5'`: a grid point as one line of text."""
    return "; ".join(f"{k}={v}" for k, v in params.items())
