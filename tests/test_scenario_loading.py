"""Scenario files: `extends` deep merge, segment overrides, frozen results, the bundled
scenarios, `plgsim schema`, and dotted-key overrides of `load_scenario`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from simulator.scenario import Scenario, ScenarioError, load_scenario
from simulator.scenario.models import Churn, PriceChange

TESTS = Path(__file__).resolve().parent
DATA = TESTS / "data"
CHAIN = DATA / "chain"
BAD = DATA / "bad"
SCENARIOS = TESTS.parent / "scenarios"
BUNDLED = sorted(SCENARIOS.glob("*.toml"))
BASELINE = SCENARIOS / "baseline.toml"


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# --- extends ---------------------------------------------------------------------------------


def test_variant_overriding_one_nested_key_keeps_its_siblings(tmp_path: Path) -> None:
    base = load_scenario(BASELINE)
    _write(tmp_path / "base.toml", BASELINE.read_text(encoding="utf-8"))
    variant = load_scenario(
        _write(tmp_path / "variant.toml", 'extends = "base.toml"\n\n[virality]\nacceptance_rate = 0.5\n')
    )
    assert variant.virality.acceptance_rate == 0.5
    assert base.virality.acceptance_rate == 0.25
    # Every sibling in [virality] and every other section comes from the parent.
    assert variant.virality.model_dump(exclude={"acceptance_rate"}) == base.virality.model_dump(
        exclude={"acceptance_rate"}
    )
    assert variant.model_dump(exclude={"virality"}) == base.model_dump(exclude={"virality"})


def test_variant_overriding_one_plan_key_keeps_the_other_plans(tmp_path: Path) -> None:
    _write(tmp_path / "base.toml", BASELINE.read_text(encoding="utf-8"))
    variant = load_scenario(
        _write(tmp_path / "v.toml", 'extends = "base.toml"\n\n[pricing.plans.pro]\nprice_per_seat = 24\n')
    )
    plans = variant.pricing.plans
    assert set(plans) == {"starter", "pro", "business"}
    assert plans["pro"].price_per_seat == 24
    assert plans["pro"].value == 1.6 and plans["pro"].annual_share == 0.3
    assert plans["business"].min_seats == 5


def test_chain_of_three_files_merges_at_every_depth() -> None:
    child = load_scenario(CHAIN / "variants" / "child.toml")
    assert child.name == "child"
    assert child.simulation.months == 12 and child.simulation.seed == 1  # grandparent
    v = child.virality
    assert v.invites_per_user == 1.0  # grandparent
    assert v.acceptance_rate == 0.2  # parent
    assert v.seat_share == 0.3  # grandparent
    assert v.cycle_time.median_days == 9  # child, two levels deep
    assert v.cycle_time.sigma == 0.5  # grandparent sibling of the child's key
    c = child.churn
    assert (c.alpha, c.beta, c.free_hazard) == (2.0, 10.0, 0.3)  # child, grandparent, parent
    plans = child.pricing.plans
    assert plans["basic"].price_per_seat == 5
    assert plans["pro"].price_per_seat == 25 and plans["pro"].annual_share == 0.25
    assert set(child.segments) == {"small", "big"}


def test_arrays_are_replaced_whole_not_appended() -> None:
    parent = load_scenario(CHAIN / "parent.toml")
    child = load_scenario(CHAIN / "variants" / "child.toml")
    assert [(e.month, e.plan) for e in parent.timeline if isinstance(e, PriceChange)] == [(3, "pro")]
    assert len(child.timeline) == 1
    event = child.timeline[0]
    assert isinstance(event, PriceChange)
    assert (event.month, event.plan, event.price_per_seat, event.change) == (6, "basic", 6, None)


def test_ancestors_are_not_changed_by_loading_a_descendant() -> None:
    before = load_scenario(CHAIN / "grandparent.toml").model_dump()
    load_scenario(CHAIN / "variants" / "child.toml")
    assert load_scenario(CHAIN / "grandparent.toml").model_dump() == before
    parent = load_scenario(CHAIN / "parent.toml")
    assert parent.virality.cycle_time.median_days == 5
    assert parent.churn.alpha == 1.0


def test_extends_is_relative_to_the_file_not_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    child = load_scenario(CHAIN / "variants" / "child.toml")
    assert child.churn.free_hazard == 0.3
    # And with a relative path given from another directory.
    monkeypatch.chdir(CHAIN / "variants")
    assert load_scenario(Path("child.toml")).model_dump() == child.model_dump()


def test_self_extends_is_a_cycle(tmp_path: Path) -> None:
    path = _write(tmp_path / "me.toml", 'extends = "me.toml"\nname = "me"\n')
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert info.value.key == "extends"
    assert info.value.file.name == "me.toml"
    assert "cycle" in info.value.message


def test_extends_cycle_error() -> None:
    with pytest.raises(ScenarioError) as info:
        load_scenario(BAD / "cycle_a.toml")
    assert info.value.key == "extends"
    assert info.value.file.name in {"cycle_a.toml", "cycle_b.toml"}
    assert "cycle_a.toml" in str(info.value) and "cycle_b.toml" in str(info.value)


def test_extends_target_missing_error() -> None:
    with pytest.raises(ScenarioError) as info:
        load_scenario(BAD / "extends_missing.toml")
    assert info.value.key == "extends"
    assert info.value.file.name == "extends_missing.toml"
    assert "no_such_parent.toml" in info.value.message


def test_error_in_parent_names_the_parent_file() -> None:
    with pytest.raises(ScenarioError) as info:
        load_scenario(BAD / "extends_bad_parent.toml")
    assert info.value.file.name == "parent_with_bad_beta.toml"
    assert info.value.key == "churn.beta"
    assert str(info.value).startswith(f"{info.value.file}: churn.beta: ")


def test_error_in_grandparent_names_the_grandparent(tmp_path: Path) -> None:
    _write(tmp_path / "a.toml", 'name = "a"\n\n[virality]\nseat_share = 3\n')
    _write(tmp_path / "sub" / "b.toml", 'extends = "../a.toml"\n\n[virality]\nacceptance_rate = 0.3\n')
    c = _write(tmp_path / "sub" / "c.toml", 'extends = "b.toml"\nname = "c"\n')
    with pytest.raises(ScenarioError) as info:
        load_scenario(c)
    assert info.value.file.resolve() == (tmp_path / "a.toml").resolve()
    assert info.value.key == "virality.seat_share"


def test_error_in_child_overriding_parent_key_names_the_child(tmp_path: Path) -> None:
    _write(tmp_path / "base.toml", BASELINE.read_text(encoding="utf-8"))
    child = _write(tmp_path / "child.toml", 'extends = "base.toml"\n\n[virality]\nacceptance_rate = 1.5\n')
    with pytest.raises(ScenarioError) as info:
        load_scenario(child)
    assert info.value.file.name == "child.toml"
    assert info.value.key == "virality.acceptance_rate"


def test_scenario_error_str_format() -> None:
    error = ScenarioError(Path("x/y.toml"), "churn.alpha", "must be > 0")
    assert str(error) == "x/y.toml: churn.alpha: must be > 0"
    assert str(ScenarioError(Path("y.toml"), "", "file is empty")) == "y.toml: file is empty"


# --- segment overrides -----------------------------------------------------------------------


def test_segment_override_merges_over_the_scenario_wide_section() -> None:
    s = load_scenario(BASELINE)
    enterprise = s.segment_churn("enterprise")
    assert (enterprise.alpha, enterprise.beta) == (1.0, 40.0)  # the segment's own keys
    # Everything it does not name comes from [churn], not from the Churn defaults.
    assert enterprise.free_hazard == s.churn.free_hazard == 0.15
    assert enterprise.downgrade_to_free_share == s.churn.downgrade_to_free_share == 0.3
    assert Churn().downgrade_to_free_share != 0.3
    assert enterprise.model_dump(exclude={"alpha", "beta"}) == s.churn.model_dump(exclude={"alpha", "beta"})
    # Segments without an override get the scenario-wide section itself.
    assert s.segment_churn("solo") == s.churn
    assert s.segment_virality("team") == s.virality
    assert s.segment_expansion("solo") == s.expansion
    assert s.segment_monetization("enterprise") == s.monetization


def test_segment_override_sees_the_merged_extends_chain() -> None:
    child = load_scenario(CHAIN / "variants" / "child.toml")
    big = child.segment_churn("big")
    # beta from the segment, alpha from the child's [churn], free_hazard from the parent's.
    assert (big.alpha, big.beta, big.free_hazard) == (2.0, 30.0, 0.3)
    assert child.segment_churn("small") == child.churn


def test_segment_override_of_nested_table(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "s.toml",
        'name = "s"\n\n[monetization]\nmodel = "free_trial"\n\n[monetization.trial]\nlength_days = 21\n'
        "conversion_activated = 0.4\n\n[segments.a]\nshare = 0.5\n\n[segments.b]\nshare = 0.5\n"
        "monetization = { trial = { length_days = 7 } }\n",
    )
    s = load_scenario(path)
    b = s.segment_monetization("b")
    assert b.model == "free_trial"
    assert b.trial.length_days == 7
    assert b.trial.conversion_activated == 0.4
    assert s.segment_monetization("a").trial.length_days == 21


def test_segment_override_errors_point_at_the_segment_key(tmp_path: Path) -> None:
    bad_value = _write(
        tmp_path / "v.toml",
        'name = "v"\n\n[segments.team]\nshare = 1.0\nchurn = { alpha = -1 }\n',
    )
    with pytest.raises(ScenarioError) as info:
        load_scenario(bad_value)
    assert info.value.key == "segments.team.churn.alpha"
    assert info.value.file.name == "v.toml"

    typo = _write(
        tmp_path / "w.toml",
        'name = "w"\n\n[segments.team]\nshare = 1.0\nvirality = { invites_per_usr = 2 }\n',
    )
    with pytest.raises(ScenarioError) as info:
        load_scenario(typo)
    assert info.value.key == "segments.team.virality.invites_per_usr"
    assert "did you mean 'invites_per_user'" in info.value.message


# --- frozen ----------------------------------------------------------------------------------


def test_loaded_scenarios_are_frozen() -> None:
    s = load_scenario(BASELINE)
    with pytest.raises(ValidationError):
        s.name = "changed"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        s.virality.acceptance_rate = 0.9  # type: ignore[misc]
    with pytest.raises(ValidationError):
        s.pricing.plans["pro"].price_per_seat = 1.0  # type: ignore[misc]
    with pytest.raises(ValidationError):
        s.segments["enterprise"].churn.beta = 1.0  # type: ignore[misc, union-attr]
    with pytest.raises(ValidationError):
        s.simulation.months = 1  # type: ignore[misc]
    assert s.name == "freemium baseline"
    assert s.virality.acceptance_rate == 0.25
    assert s.simulation.months == 36


# --- bundled scenarios -----------------------------------------------------------------------


def test_bundled_scenarios_are_there() -> None:
    names = {p.name for p in BUNDLED}
    assert "baseline.toml" in names
    assert len(names) >= 3
    variants = [p for p in BUNDLED if p.name != "baseline.toml"]
    assert all('extends = "baseline.toml"' in p.read_text(encoding="utf-8") for p in variants)


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.stem)
def test_bundled_scenario_validates(path: Path) -> None:
    s = load_scenario(path)
    assert isinstance(s, Scenario)
    assert s.name and s.name != "scenario"
    assert s.description


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.stem)
def test_bundled_scenario_opens_with_its_question(path: Path) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines and lines[0].startswith("# ") and len(lines[0]) > 10, lines[:1]
    header = []
    for line in lines:
        if not line.startswith("#"):
            break
        header.append(line)
    assert "?" in " ".join(header), f"the opening comment of {path.name} asks no question"


def test_plgsim_validate_accepts_every_bundled_scenario(plgsim) -> None:
    proc = plgsim("validate", *BUNDLED)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert proc.stdout.count("ok:") == len(BUNDLED)


# --- schema ----------------------------------------------------------------------------------


def test_plgsim_schema_is_json_schema_of_scenarios(plgsim) -> None:
    proc = plgsim("schema")
    assert proc.returncode == 0, proc.stderr
    schema = json.loads(proc.stdout)
    properties = schema["properties"]
    for key in ("pricing", "timeline", "virality", "segments", "simulation", "churn"):
        assert key in properties, key
    assert schema.get("additionalProperties") is False  # unknown keys are errors
    assert schema == Scenario.model_json_schema()


# --- overrides -------------------------------------------------------------------------------


def test_overrides_apply_dotted_keys() -> None:
    s = load_scenario(
        BASELINE,
        {"simulation.months": 6, "virality.acceptance_rate": 0.5, "pricing.plans.pro.price_per_seat": 30},
    )
    assert s.simulation.months == 6
    assert s.simulation.seed == 7  # sibling kept
    assert s.virality.acceptance_rate == 0.5
    assert s.virality.invites_per_user == 1.2
    assert s.pricing.plans["pro"].price_per_seat == 30
    assert s.pricing.plans["pro"].value == 1.6
    assert set(s.pricing.plans) == {"starter", "pro", "business"}
    assert load_scenario(BASELINE).simulation.months == 36  # the file itself is unchanged


def test_overrides_reach_segment_overrides() -> None:
    s = load_scenario(BASELINE, {"churn.free_hazard": 0.4})
    assert s.churn.free_hazard == 0.4
    assert s.segment_churn("enterprise").free_hazard == 0.4
    assert s.segment_churn("enterprise").beta == 40.0


def test_overrides_apply_through_extends() -> None:
    s = load_scenario(CHAIN / "variants" / "child.toml", {"virality.cycle_time.sigma": 1.5})
    assert s.virality.cycle_time.sigma == 1.5
    assert s.virality.cycle_time.median_days == 9


@pytest.mark.parametrize(
    ("overrides", "key", "text"),
    [
        ({"virality.acceptance_rate": 1.5}, "virality.acceptance_rate", "1.5"),
        ({"simulation.months": 0}, "simulation.months", ""),
        ({"pricing.plans.pro.price_per_seat": -1}, "pricing.plans.pro.price_per_seat", ""),
        ({"virality.invites_per_usr": 2}, "virality.invites_per_usr", "did you mean 'invites_per_user'"),
        ({"churn.alpha": "lots"}, "churn.alpha", ""),
    ],
    ids=["probability", "months", "price", "unknown-key", "type"],
)
def test_overrides_are_validated(overrides: dict[str, object], key: str, text: str) -> None:
    with pytest.raises(ScenarioError) as info:
        load_scenario(BASELINE, overrides)
    assert info.value.key == key
    assert text in info.value.message
