"""Load scenario files: read TOML, resolve `extends` chains, validate, and turn every
failure into one `ScenarioError` that names the file and the dotted key."""

from __future__ import annotations

import tomllib
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from simulator.scenario.merge import deep_merge, set_dotted
from simulator.scenario.models import Scenario
from simulator.suggest import did_you_mean

Provenance = dict[tuple[str, ...], Path]


@dataclass(frozen=True)
class ScenarioError(Exception):
    """A scenario file that cannot be used; `str()` is the message shown to a person."""

    file: Path
    key: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}: {self.key}" if self.key else str(self.file)
        return f"{where}: {self.message}"


def _read_toml(path: Path, key: str = "") -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError(path, key, "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(path, key, f"cannot read file ({exc})") from None
    if not text.strip():
        raise ScenarioError(path, "", "file is empty; a scenario needs at least a name")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(path, "", f"not valid TOML: {exc}") from None


def _record(provenance: Provenance, data: dict[str, Any], path: Path, prefix: tuple[str, ...] = ()) -> None:
    for key, value in data.items():
        here = (*prefix, key)
        provenance[here] = path
        if isinstance(value, dict):
            _record(provenance, value, path, here)


def load_raw(path: Path, _chain: tuple[Path, ...] = ()) -> tuple[dict[str, Any], Provenance]:
    """The merged table of `path` and its `extends` ancestors, and which file set each key."""
    path = path.resolve() if _chain else path
    resolved = path.resolve()
    if resolved in _chain:
        cycle = " → ".join(p.name for p in (*_chain, resolved))
        raise ScenarioError(_chain[-1], "extends", f"extends cycle: {cycle}")
    data = _read_toml(path)
    provenance: Provenance = {}
    parent_name = data.pop("extends", None)
    if parent_name is None:
        _record(provenance, data, path)
        return data, provenance
    if not isinstance(parent_name, str):
        raise ScenarioError(path, "extends", "must be a file name (string), relative to this file")
    parent_path = (resolved.parent / parent_name).resolve()
    if not parent_path.is_file():
        raise ScenarioError(path, "extends", f"parent scenario {parent_name!r} not found at {parent_path}")
    parent, provenance = load_raw(parent_path, (*_chain, resolved))
    _record(provenance, data, path)
    return deep_merge(parent, data), provenance


def parent_of(path: Path) -> str | None:
    """The `extends` target named in a file, without loading it (None if none or unreadable)."""
    try:
        value = tomllib.loads(path.read_text(encoding="utf-8")).get("extends")
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    return value if isinstance(value, str) else None


def load_scenario(path: str | Path, overrides: dict[str, Any] | None = None) -> Scenario:
    """Load and validate a scenario file. `overrides` maps dotted keys to values applied
    after `extends` merging, validated like the file's own keys."""
    path = Path(path)
    data, provenance = load_raw(path)
    data = apply_overrides(data, overrides or {}, path, provenance)
    data.setdefault("name", path.stem)
    return validate_scenario(data, path, provenance)


def apply_overrides(
    data: dict[str, Any], overrides: dict[str, Any], path: Path, provenance: Provenance | None = None
) -> dict[str, Any]:
    """`data` with each dotted key of `overrides` set; a key that cannot be followed is a
    ScenarioError. Errors in an override's value are blamed on `path` (recorded in `provenance`)."""
    for dotted, value in overrides.items():
        if provenance is not None:
            provenance[tuple(dotted.split("."))] = path
        _check_named_entries(data, dotted, path)
        try:
            data = set_dotted(data, dotted, value)
        except KeyError as exc:
            key, _, reason = str(exc.args[0]).partition(": ")
            raise ScenarioError(path, key, reason) from None
    return data


def _check_named_entries(data: dict[str, Any], dotted: str, path: Path) -> None:
    """An override may set any key of an existing plan, flow or segment, but never create one:
    'pricing.plans.prp.price_per_seat' is a typo for 'pro', not a new plan with defaults."""
    annotation: Any = Scenario
    node: Any = data
    parts = dotted.split(".")
    for depth, part in enumerate(parts[:-1]):
        if typing.get_origin(_unwrap(annotation)) is dict and isinstance(node, dict) and part not in node:
            where = ".".join(parts[: depth + 1])
            names = ", ".join(node) or "none"
            raise ScenarioError(path, where, f"no entry named {part!r}{did_you_mean(part, node)} (defined: {names})")
        annotation = _step(annotation, part)
        node = node.get(part, {}) if isinstance(node, dict) else {}
        if annotation is None:
            return


def validate_scenario(data: dict[str, Any], path: Path, provenance: Provenance | None = None) -> Scenario:
    """Validate a merged table; the first problem becomes a ScenarioError."""
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise _to_scenario_error(exc, path, provenance or {}) from None


def _to_scenario_error(exc: ValidationError, path: Path, provenance: Provenance) -> ScenarioError:
    problems = []
    for error in exc.errors():
        loc = tuple(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        if not loc and ": " in message:
            # Cross-field checks write "dotted.key: reason"; recover the key from the message.
            key_text, message = message.split(": ", 1)
            loc = tuple(key_text.split("."))
        key = ".".join(_without_union_tags(loc))
        if error["type"] == "extra_forbidden":
            message = "unknown key" + did_you_mean(loc[-1], _keys_at(Scenario, list(loc[:-1])))
        elif error["type"] == "missing":
            message = "required key is missing"
        else:
            allowed = _allowed_range(loc) if error["type"] in _BOUND_ERRORS else ""
            if allowed:
                message = f"{message}; allowed: {allowed}"
            if loc and not isinstance(error.get("input"), dict | list):
                message = f"{message} (got {error['input']!r})"
        problems.append((_file_for(loc, path, provenance), key, message))
    file, key, message = problems[0]
    if len(problems) > 1:
        message += f" (and {len(problems) - 1} more problem{'s' if len(problems) > 2 else ''})"
    return ScenarioError(file, key, message)


_UNION_TAGS = {"price_change", "onboarding", "paid_budget"}
_BOUND_ERRORS = {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}


def _allowed_range(loc: tuple[str, ...]) -> str:
    """The full allowed range of the field at `loc`, e.g. '0.0 to 1.0' or '> 0'."""
    from simulator.scenario.reference import allowed_range

    parent = _model_at(Scenario, list(loc[:-1]))
    field = parent.model_fields.get(loc[-1]) if parent is not None else None
    if field is None:
        return ""
    text = allowed_range(field)
    inclusive = text.split(", ")
    if len(inclusive) == 2 and inclusive[0].startswith("≥ ") and inclusive[1].startswith("≤ "):
        return f"{inclusive[0][2:]} to {inclusive[1][2:]}"
    return text


def _without_union_tags(loc: tuple[str, ...]) -> tuple[str, ...]:
    # pydantic puts the discriminator value into the location of a tagged union member.
    if len(loc) > 2 and loc[0] == "timeline" and loc[2] in _UNION_TAGS:
        return loc[:2] + loc[3:]
    return loc


def _file_for(loc: tuple[str, ...], path: Path, provenance: Provenance) -> Path:
    clean = _without_union_tags(loc)
    for end in range(len(clean), 0, -1):
        if clean[:end] in provenance:
            return provenance[clean[:end]]
    return path


def field_at(dotted: str) -> FieldInfo | None:
    """The schema field at a dotted key ('virality.acceptance_rate', 'pricing.plans.pro.price_per_seat'),
    or None if there is none."""
    parts = dotted.split(".")
    parent = _model_at(Scenario, parts[:-1])
    return parent.model_fields.get(parts[-1]) if parent is not None else None


def _keys_at(model: Any, path: list[str]) -> list[str]:
    """Field names of the model reached by following `path` through nested models and dicts."""
    found = _model_at(model, path)
    return list(found.model_fields) if found is not None else []


def _model_at(model: Any, path: list[str]) -> type[BaseModel] | None:
    """The model class reached by following `path` through nested models, dicts and lists."""
    current: Any = model
    for part in path:
        current = _step(current, part)
        if current is None:
            return None
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _step(annotation: Any, part: str) -> Any:
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        field = annotation.model_fields.get(part)
        return _unwrap(field.annotation) if field else None
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is dict:
        return _unwrap(args[1])
    if origin is list:
        return _unwrap(args[0])
    if origin in (typing.Union, types.UnionType):
        # Tagged timeline union: the tag names the member.
        for member in args:
            kind = getattr(member, "model_fields", {}).get("kind")
            if kind is not None and part in typing.get_args(kind.annotation):
                return member
    return None


def _unwrap(annotation: Any) -> Any:
    """Strip Annotated and Optional wrappers."""
    while True:
        if typing.get_origin(annotation) is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
            continue
        if typing.get_origin(annotation) in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(args) == 1:
                annotation = args[0]
                continue
        return annotation
