"""Sweep grids (simulator/runner/grid.py) and their validation against real scenarios
(simulator/runner/sweep.py).

The grid is a pure function of the `--set KEY=SPEC` text and a file's `[sweep]` table: ranges
must land exactly on decimal values and include their stop, lists keep what a person typed
(int, float, bool or text), and the product must come out in a fixed order so that sweep
tables line up. Then every grid point must be validated against the scenario schema before a
single replication runs: a typo in a key or an out-of-range value is reported (file, key,
reason) instead of being discovered after hours of simulation.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import simulator
import simulator.api
import simulator.runner.executors
from simulator.runner.grid import (
    MAX_POINTS,
    GridError,
    Value,
    describe_point,
    expand_grid,
    parse_assignment,
    parse_scalar,
    parse_values,
)
from simulator.runner.sweep import grid_points, sweep_axes
from simulator.scenario import Scenario, ScenarioError, load_scenario

TESTS = Path(__file__).resolve().parent
TINY = TESTS / "data" / "tiny.toml"
PRICE_RISE = TESTS.parent / "scenarios" / "price_rise_30.toml"

INVITES = "virality.invites_per_user"
PRO_PRICE = "pricing.plans.pro.price_per_seat"


def _types(values: list[Any]) -> list[type]:
    return [type(v) for v in values]


# --- ranges ----------------------------------------------------------------------------------


def test_integer_range_includes_its_stop() -> None:
    values = parse_values("simulation.months", "10:60:5")
    assert values == [10, 15, 20, 25, 30, 35, 40, 45, 50, 55, 60]
    assert len(values) == 11
    assert _types(values) == [int] * 11


def test_decimal_range_is_exact() -> None:
    values = parse_values(INVITES, "0.1:0.3:0.1")
    # Stepping in binary floating point would give 0.30000000000000004 and might drop the stop.
    assert values == [0.1, 0.2, 0.3]
    assert _types(values) == [float] * 3
    assert parse_values(INVITES, "0:1:0.1") == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    assert parse_values(INVITES, "1.05:1.25:0.05") == [1.05, 1.1, 1.15, 1.2, 1.25]


def test_range_stop_off_the_grid_is_left_out() -> None:
    assert parse_values("k", "0:10:3") == [0, 3, 6, 9]
    assert parse_values("k", "0:1:0.3") == [0.0, 0.3, 0.6, 0.9]


def test_descending_ranges() -> None:
    assert parse_values("k", "3:1:-1") == [3, 2, 1]
    assert parse_values("k", "10:0:-3") == [10, 7, 4, 1]
    assert parse_values("k", "1:0:-0.25") == [1.0, 0.75, 0.5, 0.25, 0.0]
    assert parse_values("k", "-1:-3:-1") == [-1, -2, -3]


def test_degenerate_range_is_one_value() -> None:
    assert parse_values("k", "5:5:1") == [5]
    assert parse_values("k", "5:5:-2") == [5]


def test_range_typing_follows_what_was_typed() -> None:
    assert _types(parse_values("k", "0:2:1")) == [int, int, int]
    # Any decimal point or exponent makes the whole axis float.
    assert parse_values("k", "0:2:1.0") == [0.0, 1.0, 2.0]
    assert _types(parse_values("k", "0:2:1.0")) == [float, float, float]
    assert _types(parse_values("k", "1e0:3e0:1")) == [float, float, float]
    assert parse_values("k", " 1 : 3 : 1 ") == [1, 2, 3]  # spaces around the parts


@pytest.mark.parametrize("spec", ["1:3:0", "1:1:0", "0:1:0.0"])
def test_zero_step_is_rejected(spec: str) -> None:
    with pytest.raises(GridError, match=r"k\.a"):
        parse_values("k.a", spec)


@pytest.mark.parametrize("spec", ["1:3:-1", "3:1:1", "0:0.3:-0.1"])
def test_step_in_the_wrong_direction_is_rejected(spec: str) -> None:
    with pytest.raises(GridError, match="never gets"):
        parse_values("k.a", spec)


@pytest.mark.parametrize("spec", ["a:3:1", "1:b:1", "1:3:x", "1:3:", "::", "1:3", "1:2:3:4", "1..2:3:1"])
def test_malformed_ranges_are_rejected(spec: str) -> None:
    with pytest.raises(GridError, match=r"k\.a"):
        parse_values("k.a", spec)


@pytest.mark.parametrize("spec", ["0:nan:1", "nan:1:1", "0:1:NaN", "0:inf:1", "0:1:Infinity", "-inf:0:1"])
def test_non_finite_range_bounds_are_rejected_as_grid_errors(spec: str) -> None:
    # 'nan' and 'inf' are numbers to Decimal; they must still be a GridError (which the CLI
    # reports), not a decimal.InvalidOperation or OverflowError traceback.
    with pytest.raises(GridError, match=r"k\.a"):
        parse_values("k.a", spec)


def test_range_longer_than_max_points_is_rejected() -> None:
    assert len(parse_values("k", f"1:{MAX_POINTS}:1")) == MAX_POINTS  # exactly at the limit
    with pytest.raises(GridError, match=str(MAX_POINTS + 1)):
        parse_values("k", f"0:{MAX_POINTS}:1")
    with pytest.raises(GridError, match="at most"):
        parse_values("k", "0:1:1e-9")  # a typo in a step: refused without building a billion values


# --- lists and single values -----------------------------------------------------------------


def test_list_keeps_int_and_float_apart() -> None:
    values = parse_values(INVITES, "0.5,1,2")
    assert values == [0.5, 1, 2]
    assert _types(values) == [float, int, int]
    assert parse_values(INVITES, " 0.5 , 1.0 ,2 ") == [0.5, 1.0, 2]
    assert _types(parse_values(INVITES, "1.0,-3,1e3")) == [float, int, float]


@pytest.mark.parametrize(
    ("spec", "value"),
    [("3", 3), ("-7", -7), ("2.5", 2.5), ("1e3", 1000.0), ("true", True), ("false", False)],
)
def test_single_value(spec: str, value: int | float | bool) -> None:
    values = parse_values("k", spec)
    assert values == [value]
    assert type(values[0]) is type(value)


@pytest.mark.parametrize(("text", "value"), [("true", True), ("True", True), ("FALSE", False), ("false", False)])
def test_booleans(text: str, value: bool) -> None:
    assert parse_scalar(text) is value


def test_text_is_kept_as_text() -> None:
    assert parse_values("segments.solo.flow", "guided,high_touch") == ["guided", "high_touch"]
    assert parse_values("monetization.model", "free_trial") == ["free_trial"]
    assert parse_scalar("yes") == "yes"
    assert parse_scalar("0x10") == "0x10"


def test_python_list_is_kept_as_is() -> None:
    # A TOML array from a [sweep] table arrives already typed: nothing is re-parsed.
    given: list[Value] = [0.5, 1, True, "1:3:1", "2"]
    values = parse_values("k", given)
    assert values == given
    assert _types(values) == [float, int, bool, str, str]
    assert values is not given  # a copy
    assert parse_values("k", (1, 2)) == [1, 2]


def test_empty_values_are_rejected() -> None:
    with pytest.raises(GridError, match="empty"):
        parse_values("k", [])
    with pytest.raises(GridError, match="no values"):
        parse_values("k", "")


@pytest.mark.parametrize("spec", ["1,,2", "1,2,", ",1"])
def test_empty_list_items_are_rejected(spec: str) -> None:
    # A stray comma must not add a grid point whose value is the empty string.
    with pytest.raises(GridError):
        parse_values("k", spec)


# --- assignments and keys --------------------------------------------------------------------


def test_assignment_splits_on_the_first_equals_sign() -> None:
    assert parse_assignment("a.b.c=1,2") == ("a.b.c", [1, 2])
    assert parse_assignment("name=a=b") == ("name", ["a=b"])
    assert parse_assignment(f" {INVITES} = 0.5:1.5:0.5 ") == (INVITES, [0.5, 1.0, 1.5])
    assert parse_assignment("timeline.0.month=6,9") == ("timeline.0.month", [6, 9])


@pytest.mark.parametrize("text", ["a.b.c", "a.b.c 1,2", "=1,2", " =1", ""])
def test_assignment_without_key_or_equals_is_rejected(text: str) -> None:
    with pytest.raises(GridError, match="KEY=VALUES"):
        parse_assignment(text)


def test_assignment_without_values_is_rejected() -> None:
    with pytest.raises(GridError, match="no values"):
        parse_assignment("a.b=")


@pytest.mark.parametrize("key", ["a..b", ".a", "a.", "a b", "a.b c", "1a", "a.b!", "a/b"])
def test_keys_must_be_dotted_identifiers(key: str) -> None:
    with pytest.raises(GridError, match="not a dotted scenario key"):
        parse_values(key, "1")
    with pytest.raises(GridError):
        parse_assignment(f"{key}=1")


def test_a_key_with_a_trailing_newline_is_not_a_dotted_key() -> None:
    # `$` in a regex also matches before a final newline; a key must not end in one.
    with pytest.raises(GridError, match="not a dotted scenario key"):
        parse_values("virality.invites_per_user\n", "1")


@pytest.mark.parametrize("key", ["simulation.months", PRO_PRICE, "timeline.0.month", "segments.team-2.share", "_x"])
def test_valid_keys(key: str) -> None:
    assert parse_values(key, "1") == [1]


# --- expand_grid and describe_point ----------------------------------------------------------


def test_grid_is_the_cartesian_product_first_axis_slowest() -> None:
    points = expand_grid({"a": [1, 2, 3], "b": ["x", "y"]})
    assert points == [
        {"a": 1, "b": "x"},
        {"a": 1, "b": "y"},
        {"a": 2, "b": "x"},
        {"a": 2, "b": "y"},
        {"a": 3, "b": "x"},
        {"a": 3, "b": "y"},
    ]


def test_grid_of_three_axes_matches_nested_loops() -> None:
    a: list[Value] = [0.5, 1.0]
    b: list[Value] = [10, 20, 30]
    c: list[Value] = [True, False, "t", "u"]
    expected = [{INVITES: x, PRO_PRICE: y, "flag": z} for x in a for y in b for z in c]
    points = expand_grid({INVITES: a, PRO_PRICE: b, "flag": c})
    assert len(points) == 2 * 3 * 4
    assert points == expected
    # Keys stay dotted (not nested tables) and in axis order.
    assert all(list(p) == [INVITES, PRO_PRICE, "flag"] for p in points)


def test_grid_of_one_axis() -> None:
    assert expand_grid({"k": [1]}) == [{"k": 1}]
    assert expand_grid({"k": (3, 2, 1)}) == [{"k": 3}, {"k": 2}, {"k": 1}]


def test_grid_without_axes_is_rejected() -> None:
    with pytest.raises(GridError, match="at least one axis"):
        expand_grid({})


def test_grid_with_an_empty_axis_is_rejected() -> None:
    with pytest.raises(GridError, match=r"b\.c"):
        expand_grid({"a": [1, 2], "b.c": []})


def test_grid_larger_than_max_points_is_rejected() -> None:
    side = int(MAX_POINTS**0.5)
    assert side * side == MAX_POINTS
    assert len(expand_grid({"a": list(range(side)), "b": list(range(side))})) == MAX_POINTS
    with pytest.raises(GridError, match="at most"):
        expand_grid({"a": list(range(side)), "b": list(range(side + 1))})
    # Checked before any product is built: 10⁴ × 10⁴ would take gigabytes.
    with pytest.raises(GridError, match="100,000,000"):
        expand_grid({"a": range(MAX_POINTS), "b": range(MAX_POINTS)})


def test_grid_points_are_independent_dicts() -> None:
    points = expand_grid({"a": [1, 2], "b": [3]})
    points[0]["a"] = 99
    assert points[1] == {"a": 2, "b": 3}
    assert expand_grid({"a": [1, 2], "b": [3]})[0] == {"a": 1, "b": 3}


def test_describe_point() -> None:
    assert describe_point({"a": 1, "b": 0.5}) == "a=1; b=0.5"
    assert describe_point({INVITES: 1.5, "monetization.model": "free_trial", "t": True}) == (
        "virality.invites_per_user=1.5; monetization.model=free_trial; t=True"
    )
    assert describe_point({"k": 7}) == "k=7"
    assert describe_point({}) == ""


# --- grid points against real scenario files -------------------------------------------------


def test_valid_grid_gives_validated_scenarios_carrying_the_values() -> None:
    base = load_scenario(TINY)
    axes = sweep_axes(TINY, {INVITES: "0.5,2", PRO_PRICE: [15, 30]})
    assert axes == {INVITES: [0.5, 2], PRO_PRICE: [15, 30]}
    points = grid_points(TINY, axes)
    assert [p.params for p in points] == [
        dict(zip(axes, combo, strict=True)) for combo in itertools.product(*axes.values())
    ]
    assert len(points) == 4
    for point in points:
        s = point.scenario
        assert isinstance(s, Scenario)
        assert s.virality.invites_per_user == point.params[INVITES]
        assert s.pricing.plans["pro"].price_per_seat == point.params[PRO_PRICE]
        # Everything else is the file's own scenario.
        assert s.pricing.plans["pro"].value == base.pricing.plans["pro"].value == 1.6
        assert s.virality.acceptance_rate == base.virality.acceptance_rate
        assert s.model_dump(exclude={"virality", "pricing"}) == base.model_dump(exclude={"virality", "pricing"})
    assert {(p.scenario.virality.invites_per_user, p.scenario.pricing.plans["pro"].price_per_seat) for p in points} == {
        (0.5, 15),
        (0.5, 30),
        (2, 15),
        (2, 30),
    }


def test_overrides_apply_to_every_point() -> None:
    points = grid_points(TINY, {INVITES: [0.5, 1.0]}, {"simulation.months": 3})
    assert [p.scenario.simulation.months for p in points] == [3, 3]
    assert load_scenario(TINY).simulation.months == 8


def test_bad_key_names_the_key_and_suggests_the_right_one() -> None:
    with pytest.raises(ScenarioError) as info:
        grid_points(TINY, {"pricing.plans.pro.price": [25, 30]})
    assert info.value.key == "pricing.plans.pro.price"
    assert "unknown key" in info.value.message
    assert "price_per_seat" in info.value.message, str(info.value)


def test_bad_sweep_key_is_blamed_on_the_swept_file() -> None:
    # The key comes from the sweep of tiny.toml; baseline.toml (which tiny.toml extends)
    # neither has it nor can be fixed to remove it.
    with pytest.raises(ScenarioError) as info:
        grid_points(TINY, {"pricing.plans.pro.price_per_seet": [25]})
    assert Path(info.value.file).resolve() == TINY, str(info.value)


def test_bad_value_names_the_key_the_allowed_range_and_the_point() -> None:
    with pytest.raises(ScenarioError) as info:
        grid_points(TINY, {"virality.acceptance_rate": [0.5, 1.5]})
    error = info.value
    assert error.key == "virality.acceptance_rate"
    assert "0.0 to 1.0" in error.message
    assert "1.5" in error.message
    assert "virality.acceptance_rate=1.5" in error.message  # which grid point


def test_bad_value_type_is_rejected() -> None:
    with pytest.raises(ScenarioError) as info:
        grid_points(TINY, {"simulation.months": [6, "twelve"]})
    assert info.value.key == "simulation.months"


def test_timeline_entries_can_be_swept_by_index() -> None:
    base = load_scenario(PRICE_RISE)
    assert len(base.timeline) == 1 and base.timeline[0].month == 12  # the file as this test assumes it
    points = grid_points(PRICE_RISE, sweep_axes(PRICE_RISE, {"timeline.0.month": "6:18:6"}))
    assert [p.scenario.timeline[0].month for p in points] == [6, 12, 18]
    for p in points:
        change = p.scenario.timeline[0]
        assert change.model_dump(exclude={"month"}) == base.timeline[0].model_dump(exclude={"month"})


def test_timeline_index_out_of_range_is_a_scenario_error() -> None:
    with pytest.raises(ScenarioError) as info:
        grid_points(PRICE_RISE, {"timeline.1.month": [6]})
    assert info.value.key == "timeline.1"
    assert "1 entries" in info.value.message
    with pytest.raises(ScenarioError) as info:
        grid_points(PRICE_RISE, {"timeline.zero.month": [6]})
    assert info.value.key.startswith("timeline.zero")


def test_sweep_spec_errors_name_the_file_and_the_key() -> None:
    with pytest.raises(ScenarioError) as info:
        sweep_axes(TINY, {INVITES: "1:3:0"})
    assert info.value.key == "sweep"
    assert Path(info.value.file) == TINY
    assert INVITES in info.value.message
    with pytest.raises(ScenarioError) as info:
        grid_points(TINY, {"a": list(range(200)), "b": list(range(200))})
    assert info.value.key == "sweep" and "at most" in info.value.message


# --- [sweep] tables in files -----------------------------------------------------------------


def _sweep_file(tmp_path: Path, table: str) -> Path:
    # `extends` is resolved against the file's own folder; an absolute path is used as is.
    path = tmp_path / "sweep.toml"
    path.write_text(f"extends = '{TINY}'\nname = 'swept'\n\n[sweep]\n{table}", encoding="utf-8")
    return path


def test_sweep_table_is_read_and_set_replaces_the_same_key(tmp_path: Path) -> None:
    path = _sweep_file(tmp_path, f'"{INVITES}" = [0.5, 1.0]\n"{PRO_PRICE}" = "20:30:10"\n')
    assert sweep_axes(path) == {INVITES: [0.5, 1.0], PRO_PRICE: [20, 30]}
    # --set replaces an axis of the same key and adds others.
    axes = sweep_axes(path, {INVITES: "3", "virality.acceptance_rate": [0.1, 0.2]})
    assert axes == {INVITES: [3], PRO_PRICE: [20, 30], "virality.acceptance_rate": [0.1, 0.2]}
    points = grid_points(path, axes)
    assert len(points) == 4
    assert {p.scenario.virality.invites_per_user for p in points} == {3}
    assert [(p.scenario.pricing.plans["pro"].price_per_seat, p.scenario.virality.acceptance_rate) for p in points] == [
        (20, 0.1),
        (20, 0.2),
        (30, 0.1),
        (30, 0.2),
    ]
    assert all(p.scenario.name == "swept" and p.scenario.simulation.months == 8 for p in points)


def test_bad_spec_in_a_sweep_table_names_the_file(tmp_path: Path) -> None:
    path = _sweep_file(tmp_path, f'"{INVITES}" = []\n')
    with pytest.raises(ScenarioError) as info:
        sweep_axes(path)
    assert Path(info.value.file) == path and info.value.key == "sweep"


def test_unquoted_dotted_key_in_a_sweep_table(tmp_path: Path) -> None:
    # TOML reads `virality.invites_per_user = [...]` as a nested table {virality: {invites_per_user: [...]}};
    # it means the dotted key, never an axis 'virality' whose values are the names of the inner keys.
    path = _sweep_file(tmp_path, f"{INVITES} = [0.5, 1.0]\n")
    assert sweep_axes(path) == {INVITES: [0.5, 1.0]}
    assert len(grid_points(path, sweep_axes(path))) == 2


def test_single_value_in_a_sweep_table(tmp_path: Path) -> None:
    # A bare number is an axis of one value, not a TypeError.
    path = _sweep_file(tmp_path, f'"{INVITES}" = 2\n')
    assert sweep_axes(path) == {INVITES: [2]}


# --- nothing runs before every point is valid ------------------------------------------------


class _Ran(Exception):
    """Raised by the trip wire: a replication was started."""


@pytest.fixture
def trip_wire(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[object]]:
    """Every way a replication starts (the executors' job function and the engine) records
    the call and raises `_Ran`."""
    calls: list[object] = []

    def tripped(*args: object, **kwargs: object) -> None:
        calls.append(args)
        raise _Ran("a replication ran")

    monkeypatch.setattr(simulator.runner.executors, "simulate", tripped)
    monkeypatch.setattr(simulator.api, "run_simpy", tripped)
    yield calls


def test_trip_wire_catches_a_valid_sweep(trip_wire: list[object]) -> None:
    # The control: a valid sweep does reach the trip wire, so the tests below are not vacuous.
    with pytest.raises(_Ran):
        simulator.sweep(TINY, {INVITES: [0.5, 1.0]}, reps=2)
    assert len(trip_wire) == 1


@pytest.mark.parametrize(
    "axes",
    [
        {"pricing.plans.pro.price": [25, 30]},
        {INVITES: [0.5, 1.0], "virality.acceptance_rate": [0.5, 1.5]},  # only the last point is bad
        {INVITES: "0:1:0"},
        {"a..b": [1]},
        {"timeline.0.month": [3]},  # tiny.toml has no timeline
    ],
    ids=["unknown-key", "last-point-out-of-range", "zero-step", "bad-key-syntax", "no-timeline"],
)
def test_sweep_rejects_bad_points_before_anything_runs(trip_wire: list[object], axes: dict[str, Any]) -> None:
    with pytest.raises(ScenarioError):
        simulator.sweep(TINY, axes, reps=2)
    assert trip_wire == []


def test_a_mistyped_plan_name_is_not_a_new_plan() -> None:
    """Overrides may set keys of existing plans, flows and segments, never invent one with defaults."""
    with pytest.raises(ScenarioError) as caught:
        grid_points(TINY, {"pricing.plans.prp.price_per_seat": [1]})
    assert caught.value.key == "pricing.plans.prp"
    assert "no entry named 'prp'; did you mean 'pro'?" in caught.value.message
    with pytest.raises(ScenarioError, match=r"segments\.smbb"):
        load_scenario(TINY, {"segments.smbb.share": 1.0})
    # A table the schema allows inside an existing entry may be created.
    base = load_scenario(TINY)
    segment = next(iter(base.segments))
    varied = load_scenario(TINY, {f"segments.{segment}.virality.invites_per_user": 3.0})
    assert varied.segment_virality(segment).invites_per_user == 3.0


def test_a_nested_sweep_table_also_loads_for_a_plain_run(tmp_path: Path) -> None:
    path = tmp_path / "nested.toml"
    text = f'extends = "{TINY.as_posix()}"\n[sweep.virality]\ninvites_per_user = [0.5, 1.0]\n'
    path.write_text(text, encoding="utf-8")
    assert load_scenario(path).sweep == {"virality.invites_per_user": [0.5, 1.0]}
    assert sweep_axes(path) == {"virality.invites_per_user": [0.5, 1.0]}
