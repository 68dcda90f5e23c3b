"""The scenario file reference (every key, default, allowed range, meaning) as Markdown,
generated from the schema so that the README cannot drift from the code.

`python -m simulator.scenario.reference` prints it.
"""

from __future__ import annotations

import types
import typing
from typing import Any

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from simulator.scenario.models import (
    SEGMENT_OVERRIDABLE,
    OnboardingSwitch,
    PaidBudgetChange,
    PriceChange,
    Scenario,
    Segment,
)


def reference_markdown() -> str:
    """Markdown tables of every scenario key."""
    lines = ["| key | type | default | allowed | meaning |", "| --- | --- | --- | --- | --- |"]
    lines += _rows(Scenario, "", None)
    for model in (PriceChange, OnboardingSwitch, PaidBudgetChange):
        kind = typing.get_args(model.model_fields["kind"].annotation)[0]
        lines += _rows(model, f"timeline[{kind}]", None)
    return "\n".join(lines) + "\n"


def _rows(model: type[BaseModel], prefix: str, defaults: BaseModel | None) -> list[str]:
    """Rows for `model`'s fields; `defaults` is the default instance of `model` where its
    parent sets one (e.g. virality.cycle_time defaults differ from a bare LogNormalDays)."""
    rows: list[str] = []
    for name, field in model.model_fields.items():
        key = f"{prefix}.{name}" if prefix else name
        inner = _unwrap(field.annotation)
        if name == "timeline" and model is Scenario:
            rows.append(
                "| `timeline` | array of tables | `[]` | — "
                "| Dated interventions, each with a `kind`; see the `timeline[kind]` rows. |"
            )
            continue
        if model is Segment and name in SEGMENT_OVERRIDABLE:
            rows.append(f"| `{key}` | table | scenario's `[{name}]` | — | {_clean(field.description)} |")
            continue
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            nested = getattr(defaults, name) if defaults is not None else field.get_default(call_default_factory=True)
            rows += _rows(inner, key, nested if isinstance(nested, BaseModel) else None)
            continue
        if typing.get_origin(inner) is dict:
            value = _unwrap(typing.get_args(inner)[1])
            if isinstance(value, type) and issubclass(value, BaseModel):
                rows.append(f"| `{key}` | table of tables | {_default(field)} | — | {_clean(field.description)} |")
                rows += _rows(value, f"{key}.<name>", None)
                continue
        default = f"`{getattr(defaults, name)}`" if defaults is not None else _default(field)
        rows.append(
            f"| `{key}` | {_type_name(inner)} | {default} | {allowed_range(field)} | {_clean(field.description)} |"
        )
    return rows


def _unwrap(annotation: Any) -> Any:
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return _unwrap(args[0])
    return annotation


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return " \\| ".join(f'"{a}"' for a in typing.get_args(annotation))
    if origin is list:
        return "array"
    return (
        getattr(annotation, "__name__", str(annotation))
        .replace("float", "number")
        .replace("int", "integer")
        .replace("str", "string")
    )


def _default(field: FieldInfo) -> str:
    if field.default is PydanticUndefined and field.default_factory is None:
        return "required"
    value = field.get_default(call_default_factory=True)
    if isinstance(value, BaseModel):
        return "see below"
    if isinstance(value, dict):
        return f"`{', '.join(value)}`" if value else "`{}`"
    if value is None:
        return "empty"
    return f"`{value!r}`".replace("'", '"') if isinstance(value, str) else f"`{value}`"


def allowed_range(field: FieldInfo) -> str:
    """A field's bounds as text, e.g. '≥ 0.0, ≤ 1.0' ('—' when unbounded)."""
    bounds = []
    for meta in field.metadata:
        for attr, symbol in (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<")):
            if isinstance(meta, getattr(annotated_types, attr.capitalize())):
                bounds.append(f"{symbol} {getattr(meta, attr)}")
    inner = typing.get_args(field.annotation)
    for arg in inner:
        for meta in getattr(arg, "__metadata__", ()):
            for sub in getattr(meta, "metadata", ()):
                for attr, symbol in (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<")):
                    if isinstance(sub, getattr(annotated_types, attr.capitalize())):
                        bounds.append(f"{symbol} {getattr(sub, attr)}")
    if not bounds and _unwrap(field.annotation) is float and "Probability" in repr(field.annotation):
        bounds = ["≥ 0.0", "≤ 1.0"]
    return ", ".join(bounds) if bounds else "—"


def _clean(text: str | None) -> str:
    return (text or "").replace("|", "\\|").replace("\n", " ")


if __name__ == "__main__":
    print(reference_markdown(), end="")
