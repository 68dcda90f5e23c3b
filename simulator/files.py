"""Writing result files atomically: a reader (or a resumed batch) never sees a half-written
file under its final name, because every file is written beside it and renamed into place."""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np


def format_number(value: float) -> str:
    """A number as CSV text: integers without a decimal point, others with 10 significant
    digits (enough to round-trip what a report needs, stable across runs); empty if undefined."""
    value = float(value)
    if not math.isfinite(value):
        return ""
    return str(int(value)) if value.is_integer() else f"{value:.10g}"


def json_number(value: float) -> float | int | None:
    """A number for JSON: integers as int, undefined (NaN, ±inf) as null."""
    if value is None or not math.isfinite(value):
        return None
    value = float(value)
    return int(value) if value.is_integer() and abs(value) < 2**53 else value


def write_atomic(path: Path, text: str) -> Path:
    """Write `text` to a temporary file beside `path`, flush it to disk, then rename it over `path`."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", encoding="utf-8", newline="") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    return path


def write_csv_table(path: Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Path:
    """Write a CSV file atomically; numbers are formatted with `format_number`, text as is."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([_cell(v) for v in row])
    return write_atomic(path, buffer.getvalue())


def write_json(path: Path, data: Any) -> Path:
    """Write JSON atomically, with sorted keys so that equal data gives equal bytes."""
    return write_atomic(path, json.dumps(data, indent=1, sort_keys=True, allow_nan=False) + "\n")


def _cell(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, int | np.integer):
        return str(int(value))  # exactly: a 63-bit seed does not survive a trip through float
    return format_number(value)


def parquet_available() -> bool:
    """True when pyarrow is installed (Parquet output is then written beside CSV)."""
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return False
    return True


def write_parquet(path: Path, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> Path:
    """Write a table (a header and rows, as for CSV) as Parquet, atomically. Needs pyarrow."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    columns = {name: [row[i] for row in rows] for i, name in enumerate(header)}
    pq.write_table(pa.table(columns), tmp)
    os.replace(tmp, path)
    return path
