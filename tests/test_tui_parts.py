"""The terminal UI's pure helpers, without a terminal.

The comparison table (which value is best, in which direction; differences against the chosen
baseline; running columns; median and P10–P90 with replications), its CSV export, the editable
assumptions and number parsing, saving an edited scenario as a variant that `extends` the
original, the scenario catalogue, and background runs (same numbers as `simulator.run`,
cancellable from the progress callback). These decide what a person reads and what is written
to disk, so they are checked here exactly, against the simulator's own results.
"""

from __future__ import annotations

import dataclasses
import math
import re
import shutil
import tomllib
from pathlib import Path

import numpy as np
import pytest

import simulator
from simulator.formatting import format_spread, format_value, summary_specs
from simulator.runner.digest import RunDigest
from simulator.runner.ensemble import Ensemble
from simulator.scenario import Scenario, ScenarioError
from simulator.scenario.loading import parent_of
from tui.assumptions import apply_edits, assumptions, parse_number, value_at
from tui.catalog import discover, load_entry
from tui.comparison import Row, better, comparison_rows, export_rows
from tui.runs import Stale, project
from tui.variant import save_variant, variant_path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
TUI = DATA / "tui"
ALPHA = TUI / "alpha.toml"
BRAVO = TUI / "bravo.toml"


# --- fixtures ------------------------------------------------------------------------------
def _one(path: Path) -> Ensemble:
    """One replication with the scenario seed, as the UI shows it."""
    scenario = simulator.load_scenario(path)
    return Ensemble(scenario, scenario.simulation.seed, (RunDigest.of(simulator.run(scenario)),))


@pytest.fixture(scope="module")
def alpha() -> Ensemble:
    return _one(ALPHA)


@pytest.fixture(scope="module")
def bravo() -> Ensemble:
    return _one(BRAVO)


@pytest.fixture(scope="module")
def spread_alpha() -> Ensemble:
    """Three replications over 14 months: every checkpoint and NRR has a real P10–P90 spread
    (NRR at month 13 looks back to month 1, when each replication has paying accounts)."""
    return simulator.run_many(ALPHA, reps=3, months=14)


@pytest.fixture(scope="module")
def spread_two(spread_alpha: Ensemble) -> Ensemble:
    """Another column with replications (cheaply: the first two of alpha's, so other medians)."""
    return dataclasses.replace(spread_alpha, runs=spread_alpha.runs[:2])


def _with_kpis(ensemble: Ensemble, kpis: dict[str, float]) -> Ensemble:
    """`ensemble` (one replication) with some KPI values replaced: rankings on chosen numbers.

    Rows at a month (checkpoints, NRR, GRR) are read from the monthly series at the row's
    month, so the value is written there too."""
    run = ensemble.runs[0]
    monthly = {k: v.copy() for k, v in run.monthly.items()}
    for spec in summary_specs(ensemble.months):
        if spec.key in kpis and spec.series is not None and spec.month is not None:
            monthly[spec.series][spec.month - 1] = kpis[spec.key]
    changed = dataclasses.replace(run, kpis={**run.kpis, **kpis}, monthly=monthly)
    return dataclasses.replace(ensemble, runs=(changed,))


def _row(rows: list[Row], key: str) -> Row:
    return next(row for row in rows if row.spec.key == key)


def _marked(rows: list[Row], key: str) -> set[int]:
    return {j for j, cell in enumerate(_row(rows, key).cells) if cell.best}


def _same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


# --- the comparison table ------------------------------------------------------------------
def test_better_direction_per_kpi() -> None:
    for key in ("mrr@m12", "arr@horizon", "users@m12", "nrr_12m", "grr_12m", "ltv_to_cac", "ltv", "viral_k"):
        assert better(key) == "higher", key
    for key in ("cac_payback_months", "cac_payback_cohort_months", "blended_cac", "logo_churn_monthly"):
        assert better(key) == "lower", key


def test_best_value_is_marked_in_the_right_direction(alpha: Ensemble) -> None:
    # The same ascending numbers in every row: higher is better marks the last column, lower
    # is better the first.
    values = {
        "mrr@m12": (100, 200, 300),
        "nrr_12m": (0.9, 1.0, 1.1),
        "ltv_to_cac": (2.0, 3.0, 4.0),
        "cac_payback_months": (3, 4, 5),
        "logo_churn_monthly": (0.01, 0.02, 0.03),
        "blended_cac": (100, 200, 300),
    }
    columns = [_with_kpis(alpha, {key: row[j] for key, row in values.items()}) for j in range(3)]
    rows = comparison_rows(columns)
    for key in ("mrr@m12", "nrr_12m", "ltv_to_cac"):
        assert _marked(rows, key) == {2}, key
    for key in ("cac_payback_months", "logo_churn_monthly", "blended_cac"):
        assert _marked(rows, key) == {0}, key
    # The same numbers in another order: the mark follows the value, not the position.
    rows = comparison_rows([columns[1], columns[2], columns[0]])
    assert _marked(rows, "mrr@m12") == {1}
    assert _marked(rows, "cac_payback_months") == {2}
    assert _row(rows, "mrr@m12").cells[1].value == 300


def test_ties_a_single_column_and_undefined_values_mark_nothing(alpha: Ensemble, bravo: Ensemble) -> None:
    tie = comparison_rows([alpha, alpha])
    assert all(not cell.best for row in tie for cell in row.cells)
    single = comparison_rows([alpha])
    assert all(not cell.best for row in single for cell in row.cells)
    running = comparison_rows([alpha, None])
    assert all(not cell.best for row in running for cell in row.cells)
    # Undefined in one column: nothing to compare against, so no mark (and 'n/a' is shown).
    rows = comparison_rows([_with_kpis(alpha, {"nrr_12m": math.nan}), bravo])
    assert _marked(rows, "nrr_12m") == set()
    assert _row(rows, "nrr_12m").cells[0].text == "n/a"
    # A tie for the best between two of three columns marks both.
    rows = comparison_rows(
        [_with_kpis(alpha, {"mrr@m12": 5}), _with_kpis(alpha, {"mrr@m12": 5}), _with_kpis(alpha, {"mrr@m12": 1})]
    )
    assert _marked(rows, "mrr@m12") == {0, 1}
    # The real scenarios differ, so something is marked: the test above can see marks.
    assert any(cell.best for row in comparison_rows([alpha, bravo]) for cell in row.cells)


def test_rows_follow_the_summary_specs_with_their_labels(alpha: Ensemble, bravo: Ensemble) -> None:
    rows = comparison_rows([alpha, bravo])
    assert [row.spec for row in rows] == summary_specs(14)
    labels = [row.spec.label for row in rows]
    assert "NRR, trailing 12 months" in labels
    assert "CAC payback (formula)" in labels
    assert "MRR, month 14 (horizon)" in labels


def test_one_replication_shows_values_and_differences_from_the_chosen_baseline(
    alpha: Ensemble, bravo: Ensemble
) -> None:
    for baseline, other in ((0, 1), (1, 0)):
        rows = comparison_rows([alpha, bravo], baseline=baseline)
        base, col = (alpha, bravo)[baseline], (alpha, bravo)[other]
        for key, unit in (("mrr@m12", "money"), ("nrr_12m", "rate"), ("cac_payback_months", "months")):
            row = _row(rows, key)
            a, b = col.kpis[key].p50, base.kpis[key].p50
            assert row.cells[baseline].text == format_value(b, unit, "USD")
            assert "Δ" not in row.cells[baseline].text
            expected = f"{format_value(a, unit, 'USD')} (Δ {format_value(a - b, unit, 'USD', signed=True)})"
            assert row.cells[other].text == expected
    # The pro price rise is visible as a difference in MRR: bravo − alpha at month 12.
    rows = comparison_rows([alpha, bravo], baseline=0)
    delta = bravo.kpis["mrr@m12"].p50 - alpha.kpis["mrr@m12"].p50
    assert delta != 0
    assert f"(Δ {format_value(delta, 'money', 'USD', signed=True)})" in _row(rows, "mrr@m12").cells[1].text


def test_columns_with_different_horizons_are_compared_at_the_month_the_row_names(alpha: Ensemble) -> None:
    """alpha over 14 and over 20 months: the same draws up to month 14. The row 'MRR, month 14
    (horizon)' must not show the longer run's month-20 MRR as if it were month 14."""
    longer_result = simulator.run(ALPHA, months=20)
    longer = Ensemble(longer_result.scenario, longer_result.seed, (RunDigest.of(longer_result),))
    at_14 = float(longer_result.monthly["mrr"][13])
    assert at_14 == pytest.approx(alpha.kpis["mrr@horizon"].p50), "same draws up to month 14"
    assert longer.kpis["mrr@horizon"].p50 != pytest.approx(at_14)
    row = _row(comparison_rows([alpha, longer]), "mrr@horizon")
    assert row.spec.label == "MRR, month 14 (horizon)"
    text = row.cells[1].text
    assert text.startswith((format_value(at_14, "money", "USD"), "n/a")), (
        f"{text!r} under 'month 14': the 20-month run's MRR is {format_value(at_14, 'money', 'USD')} at month 14"
    )


def test_running_columns_show_an_ellipsis(alpha: Ensemble) -> None:
    assert comparison_rows([None, None]) == []
    rows = comparison_rows([None, alpha], baseline=0)
    assert rows, "one finished column is enough for rows"
    for row in rows:
        assert row.cells[0].text == "…"
        assert math.isnan(row.cells[0].value)
        assert not row.cells[0].best
        assert "…" not in row.cells[1].text
        assert "Δ" not in row.cells[1].text, "no difference against a baseline that is still running"


def test_replications_show_median_and_p10_to_p90(spread_alpha: Ensemble, spread_two: Ensemble) -> None:
    assert spread_alpha.reps == 3
    rows = comparison_rows([spread_alpha, spread_two])
    pattern = re.compile(r"^[\d,.]+ USD \[[\d,.]+ – [\d,.]+\]$")
    for key, unit in (("mrr@m12", "money"), ("arr@horizon", "money"), ("nrr_12m", "rate")):
        cell = _row(rows, key).cells[0]
        spread = spread_alpha.kpis[key]
        assert spread.p10 < spread.p90, f"{key}: three replications should differ"
        assert cell.text == format_spread(spread, unit, "USD")
        assert cell.value == spread.p50
    assert pattern.match(_row(rows, "mrr@m12").cells[0].text)
    assert re.match(r"^[\d.]+% \[[\d.]+ – [\d.]+\]$", _row(rows, "nrr_12m").cells[0].text)
    # The other column: its spread, then the difference of the medians.
    other = _row(rows, "mrr@m12").cells[1].text
    delta = spread_two.kpis["mrr@m12"].p50 - spread_alpha.kpis["mrr@m12"].p50
    assert other == (
        f"{format_spread(spread_two.kpis['mrr@m12'], 'money', 'USD')} "
        f"(Δ {format_value(delta, 'money', 'USD', signed=True)})"
    )


def test_export_rows_have_median_p10_p90_per_scenario(alpha: Ensemble, spread_two: Ensemble) -> None:
    header, rows = export_rows(["alpha", "pair"], [alpha, spread_two])
    assert header == ["metric", "alpha p50", "alpha p10", "alpha p90", "pair p50", "pair p10", "pair p90"]
    specs = summary_specs(13)  # the shorter horizon of the two
    assert [row[0] for row in rows] == [spec.key for spec in specs]
    assert all(len(row) == len(header) for row in rows)
    by_key = {row[0]: row for row in rows}
    mrr = by_key["mrr@m12"]
    value = alpha.kpis["mrr@m12"].p50
    assert mrr[1:4] == [value, value, value], "one replication: median = P10 = P90"
    spread = spread_two.kpis["mrr@m12"]
    assert mrr[4:7] == [spread.p50, spread.p10, spread.p90]
    assert mrr[5] < mrr[6]


def test_export_rows_leave_a_missing_kpi_undefined(alpha: Ensemble) -> None:
    run = alpha.runs[0]
    kpis = {k: v for k, v in run.kpis.items() if k != "ltv"}
    missing = dataclasses.replace(alpha, runs=(dataclasses.replace(run, kpis=kpis),))
    _, rows = export_rows(["a"], [missing])
    ltv = next(row for row in rows if row[0] == "ltv")
    assert all(isinstance(x, float) and math.isnan(x) for x in ltv[1:])


# --- assumptions ---------------------------------------------------------------------------
def test_assumptions_of_a_freemium_scenario() -> None:
    scenario = simulator.load_scenario(BRAVO)
    found = {a.key: a for a in assumptions(scenario)}
    assert len(found) == len(assumptions(scenario)), "each key once"
    for plan in scenario.pricing.plans:
        assert f"pricing.plans.{plan}.price_per_seat" in found
    flows = {segment.flow for segment in scenario.segments.values()}
    assert flows == {"self_serve", "high_touch"}
    for flow in flows:
        assert f"onboarding.{flow}.activation_probability" in found
        assert f"onboarding.{flow}.time_to_value.median_days" in found
    assert "guided" in scenario.onboarding, "the baseline defines a flow no segment uses"
    assert not any(key.startswith("onboarding.guided.") for key in found)
    for key in (
        "virality.invites_per_user",
        "virality.acceptance_rate",
        "churn.alpha",
        "churn.beta",
        "acquisition.paid.monthly_budget",
    ):
        assert key in found
    assert "monetization.trial.length_days" not in found, "no trial in freemium"
    assert found["pricing.plans.pro.price_per_seat"].value == 26, "bravo's own price, not alpha's"
    assert found["pricing.plans.pro.price_per_seat"].unit == "USD/seat/month"
    for key, assumption in found.items():
        assert assumption.value == value_at(scenario, key)
        assert assumption.allowed.strip(), key
        assert assumption.label.strip(), key
    assert found["virality.acceptance_rate"].value == scenario.virality.acceptance_rate
    assert found["churn.beta"].value == scenario.churn.beta


def test_trial_length_is_editable_only_in_trial_models() -> None:
    trial = simulator.load_scenario(ROOT / "scenarios" / "trial_14d.toml")
    found = {a.key: a for a in assumptions(trial)}
    assert found["monetization.trial.length_days"].value == 14
    assert "365" in found["monetization.trial.length_days"].allowed


def test_value_at_follows_models_and_dicts() -> None:
    scenario = simulator.load_scenario(BRAVO)
    assert value_at(scenario, "pricing.plans.pro.price_per_seat") == scenario.pricing.plans["pro"].price_per_seat
    assert value_at(scenario, "simulation.months") == 14
    with pytest.raises((KeyError, AttributeError)):
        value_at(scenario, "pricing.plans.platinum.price_per_seat")


def test_parse_number() -> None:
    assert parse_number("1,200", integer=False) == 1200.0
    assert parse_number("3e2", integer=False) == 300.0
    assert parse_number(" 0.25 ", integer=False) == 0.25
    assert parse_number("1_000", integer=False) == 1000.0
    assert parse_number("-5", integer=False) == -5.0, "ranges are the scenario's job, not the parser's"
    assert parse_number("1,200", integer=True) == 1200
    assert isinstance(parse_number("14", integer=True), int)
    with pytest.raises(ValueError, match="number"):
        parse_number("abc", integer=False)
    with pytest.raises(ValueError, match="whole number"):
        parse_number("1.5", integer=True)
    with pytest.raises(ValueError):
        parse_number("", integer=False)


def test_apply_edits_validates_and_names_the_key() -> None:
    edited = apply_edits(ALPHA, {"pricing.plans.pro.price_per_seat": 30.0})
    assert edited.pricing.plans["pro"].price_per_seat == 30.0
    with pytest.raises(ScenarioError, match="price_per_seat"):
        apply_edits(ALPHA, {"pricing.plans.pro.price_per_seat": -5.0})
    with pytest.raises(ScenarioError, match="activation_probability"):
        apply_edits(ALPHA, {"onboarding.self_serve.activation_probability": 1.5})


# --- variants ------------------------------------------------------------------------------
def _without_name(scenario: Scenario) -> dict[str, object]:
    return scenario.model_dump(exclude={"name"})


def test_save_variant_writes_only_the_edits_beside_the_original(tmp_path: Path, tui_scenarios: Path) -> None:
    folder = tui_scenarios
    original = folder / "alpha.toml"
    edits = {"pricing.plans.pro.price_per_seat": 30.0, "churn.beta": 10.0, "virality.acceptance_rate": 0.4}
    saved = save_variant(original, edits, "alpha (edited)")
    assert saved == folder / "alpha-variant.toml"
    table = tomllib.loads(saved.read_text(encoding="utf-8"))
    assert table == {
        "extends": "alpha.toml",
        "name": "alpha (edited)",
        "pricing": {"plans": {"pro": {"price_per_seat": 30.0}}},
        "churn": {"beta": 10.0},
        "virality": {"acceptance_rate": 0.4},
    }
    assert parent_of(saved) == "alpha.toml"
    variant = simulator.load_scenario(saved)
    assert variant.name == "alpha (edited)"
    assert _without_name(variant) == _without_name(apply_edits(original, edits))
    assert _without_name(variant) != _without_name(simulator.load_scenario(original)), "the edits took effect"
    # Relative `extends`: the folder can move and the variant still loads.
    moved = shutil.copytree(folder, tmp_path / "moved")
    assert _without_name(simulator.load_scenario(moved / saved.name)) == _without_name(variant)


def test_a_second_save_picks_a_new_file(tmp_path: Path, tui_scenarios: Path) -> None:
    folder = tui_scenarios
    original = folder / "bravo.toml"  # a scenario that itself extends another
    first = save_variant(original, {"churn.alpha": 1.2}, "first")
    assert variant_path(original) == folder / "bravo-variant-2.toml"
    second = save_variant(original, {"churn.alpha": 1.5}, "second")
    third = save_variant(original, {"churn.alpha": 1.7}, "third")
    assert (first.name, second.name, third.name) == (
        "bravo-variant.toml",
        "bravo-variant-2.toml",
        "bravo-variant-3.toml",
    )
    assert simulator.load_scenario(first).churn.alpha == 1.2, "the first variant is not overwritten"
    assert simulator.load_scenario(second).churn.alpha == 1.5
    assert simulator.load_scenario(third).pricing.plans["pro"].price_per_seat == 26, "inherits from bravo"


# --- the catalogue ---------------------------------------------------------------------------
def test_discover_lists_every_file_with_its_error() -> None:
    entries = discover([TUI])
    assert [e.path.name for e in entries] == ["alpha.toml", "bravo.toml", "broken.toml"]
    alpha, bravo, broken = entries
    assert (alpha.name, bravo.name) == ("alpha", "bravo")
    assert bravo.parent == "alpha.toml"
    assert broken.scenario is None
    assert "acceptance_rat" in broken.error
    assert broken.name == "broken"
    assert load_entry(BRAVO).scenario == bravo.scenario


# --- background runs ---------------------------------------------------------------------------
def test_project_with_one_replication_equals_simulator_run() -> None:
    scenario = simulator.load_scenario(ALPHA, {"simulation.months": 6})
    shares: list[float] = []
    ensemble = project(scenario, 1, shares.append)
    direct = simulator.run(scenario)
    assert direct.seed == scenario.simulation.seed == 11
    assert ensemble.reps == 1
    assert ensemble.seeds == (scenario.simulation.seed,)
    assert ensemble.scenario == scenario
    run = ensemble.runs[0]
    assert run.kpis.keys() == direct.kpis.keys()
    assert all(_same(run.kpis[k], direct.kpis[k]) for k in direct.kpis)
    for name, series in run.monthly.items():
        np.testing.assert_array_equal(series, np.asarray(direct.monthly[name], dtype=float))
    assert shares == pytest.approx([m / 6 for m in range(1, 7)]), "progress after every month"


def test_project_stops_when_the_progress_callback_raises_stale() -> None:
    scenario = simulator.load_scenario(ALPHA)
    calls: list[float] = []

    def progress(share: float) -> None:
        calls.append(share)
        if len(calls) == 2:
            raise Stale

    with pytest.raises(Stale):
        project(scenario, 1, progress)
    assert len(calls) == 2 < scenario.simulation.months
