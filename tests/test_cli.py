"""The `plgsim` command line: bad input gives one message and exit code 2 (never a
traceback), and `run`, `compare`, `validate` produce what they promise.

Simulating tests use `--months 3`/`--months 6` on a bundled scenario or a tiny file, so the
module stays fast. Subprocess tests exercise the real console script; CliRunner tests call
`tui.cli.app` in-process and check that the only exception that escaped is SystemExit.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tui.cli import app

DATA = Path(__file__).resolve().parent / "data"
BAD = DATA / "bad"
ROOT = Path(__file__).resolve().parent.parent
BASELINE = ROOT / "scenarios" / "baseline.toml"

SUMMARY_KEYS = (
    "users",
    "paying_accounts",
    "mrr",
    "arr",
    "nrr_12m",
    "grr_12m",
    "cac_payback_months",
    "ltv_to_cac",
    "viral_k",
)
MONTHLY_KEYS = (
    "month",
    "signups",
    "active_users",
    "paying_accounts",
    "mrr",
    "mrr_new",
    "mrr_expansion",
    "mrr_contraction",
    "mrr_churned",
    "mrr_reactivation",
)
COHORT_CSVS = (
    "user_retention.csv",
    "account_retention.csv",
    "revenue_retention.csv",
    "mrr_by_payment_cohort.csv",
)


def _without_got(message: str) -> str:
    """The message without pydantic's trailing "(got …)" echo of the input."""
    return re.sub(r"\s*\(got .*\)\s*$", "", message)


def _names_probability_range(message: str) -> bool:
    """The message states the allowed range of a probability: both bounds, 0 and 1."""
    text = _without_got(message)
    return bool(re.search(r"\b0(\.0+)?\s*(to|and|-|–|\.\.|…|,|≤\s*\w+\s*≤)\s*1(\.0+)?\b", text))


@dataclass(frozen=True)
class BadCase:
    """A broken scenario file and what its single error message must contain."""

    id: str
    file: str
    named: str  # regex: "FILE: key: " (or "FILE: " when there is no key) the message must contain
    key: str | None
    contains: tuple[str, ...] = ()
    check: Callable[[str], bool] | None = field(default=None, compare=False)
    names_given_file: bool = True  # False when the error lives in another file (a parent)


def _where(file: str, key: str | None) -> str:
    return re.escape(file) + r": " + (re.escape(key) + r": " if key else "")


BAD_CASES = [
    BadCase(
        "unknown-key",
        "unknown_key.toml",
        _where("unknown_key.toml", "virality.invites_per_usr"),
        "virality.invites_per_usr",
        ("did you mean 'invites_per_user'",),
    ),
    BadCase(
        "wrong-type",
        "wrong_type.toml",
        _where("wrong_type.toml", "churn.alpha"),
        "churn.alpha",
        ("number",),
    ),
    BadCase(
        # TOML is typed: "0.3" is a string, and a strict schema must not quietly coerce it.
        "quoted-number",
        "quoted_number.toml",
        _where("quoted_number.toml", "virality.acceptance_rate"),
        "virality.acceptance_rate",
    ),
    BadCase(
        "probability-above-1",
        "probability_above_one.toml",
        _where("probability_above_one.toml", "virality.acceptance_rate"),
        "virality.acceptance_rate",
        check=_names_probability_range,
    ),
    BadCase(
        "negative-price",
        "negative_price.toml",
        _where("negative_price.toml", "pricing.plans.pro.price_per_seat"),
        "pricing.plans.pro.price_per_seat",
        ("0",),
    ),
    BadCase(
        "shares-do-not-sum-to-1",
        "shares_not_one.toml",
        _where("shares_not_one.toml", "segments"),
        "segments",
        ("sum to 1",),
    ),
    BadCase(
        "unknown-plan-in-price-change",
        "unknown_plan_in_timeline.toml",
        _where("unknown_plan_in_timeline.toml", "timeline.0.plan"),
        "timeline.0.plan",
        ("platinum",),
    ),
    BadCase(
        "extends-cycle",
        "cycle_a.toml",
        r"cycle_[ab]\.toml: extends: ",
        "extends",
        ("cycle_a.toml", "cycle_b.toml", "cycle"),
    ),
    BadCase(
        "extends-target-missing",
        "extends_missing.toml",
        _where("extends_missing.toml", "extends"),
        "extends",
        ("no_such_parent.toml",),
    ),
    BadCase("missing-file", "does_not_exist.toml", _where("does_not_exist.toml", None), None, ("not found",)),
    BadCase("not-toml", "not_toml.toml", _where("not_toml.toml", None), None, ("TOML",)),
    BadCase("empty-file", "empty.toml", _where("empty.toml", None), None, ("empty",)),
    BadCase(
        # The child is fine; churn.beta = -3 comes from its parent, which the message must name.
        "error-in-parent-file",
        "extends_bad_parent.toml",
        _where("parent_with_bad_beta.toml", "churn.beta"),
        "churn.beta",
        names_given_file=False,
    ),
]


def _check_message(case: BadCase, stderr: str) -> None:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one message on stderr, got:\n{stderr}"
    message = lines[0]
    if case.names_given_file:
        assert case.file in message
    if case.key is not None:
        assert case.key in message
    assert re.search(case.named, message), f"{case.named!r} not in {message!r}"
    for text in case.contains:
        assert text in message, f"{text!r} not in {message!r}"
    if case.check is not None:
        assert case.check(message), f"{case.check.__name__} failed for {message!r}"


def test_bad_case_files_exist() -> None:
    """Guards the table: every fixture except the deliberately missing one is on disk."""
    for case in BAD_CASES:
        assert (BAD / case.file).exists() == (case.id != "missing-file"), case.file
    assert (BAD / "parent_with_bad_beta.toml").is_file()
    assert (BAD / "cycle_b.toml").is_file()


@pytest.mark.parametrize("case", BAD_CASES, ids=lambda c: c.id)
def test_validate_bad_file_subprocess(case: BadCase, plgsim) -> None:
    proc = plgsim("validate", BAD / case.file)
    assert "Traceback" not in proc.stderr + proc.stdout
    assert proc.returncode == 2, proc.stderr
    assert "ok:" not in proc.stdout
    _check_message(case, proc.stderr)


@pytest.mark.parametrize("case", BAD_CASES, ids=lambda c: c.id)
def test_run_bad_file(case: BadCase) -> None:
    result = CliRunner().invoke(app, ["run", str(BAD / case.file), "--months", "3"])
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    _check_message(case, result.stderr)


def test_run_bad_file_subprocess_console_script(plgsim) -> None:
    proc = plgsim("run", BAD / "unknown_key.toml", "--months", "3", "--json")
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    _check_message(BAD_CASES[0], proc.stderr)


def test_validate_reports_each_file_and_fails_if_any_is_bad(plgsim) -> None:
    proc = plgsim("validate", BASELINE, BAD / "unknown_key.toml")
    assert proc.returncode == 2
    assert "ok:" in proc.stdout and "baseline.toml" in proc.stdout
    assert "unknown_key.toml" in proc.stderr and "virality.invites_per_usr" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_compare_with_a_bad_file_exits_2() -> None:
    result = CliRunner().invoke(app, ["compare", str(BASELINE), str(BAD / "negative_price.toml"), "--months", "3"])
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == 2
    assert "negative_price.toml" in result.stderr
    assert "pricing.plans.pro.price_per_seat" in result.stderr


def test_bad_option_value_exits_2() -> None:
    result = CliRunner().invoke(app, ["run", str(BASELINE), "--months", "0"])
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == 2
    assert "months" in result.stderr


@pytest.mark.parametrize(
    ("args", "key"),
    [
        (["validate", str(BAD / "shares_not_one_variant.toml")], "segments"),
        (["run", str(BAD / "unknown_plan_in_timeline.toml")], "timeline.0.plan"),
    ],
    ids=["shares-in-variant-of-baseline", "unknown-plan-in-timeline"],
)
def test_cross_field_error_is_one_short_message(args: list[str], key: str) -> None:
    """A cross-field check (shares, timeline) must report its key, not echo the whole merged
    scenario back at the user."""
    result = CliRunner().invoke(app, args)
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == 2
    assert key in result.stderr
    assert "'market'" not in result.stderr, "the message dumps the whole scenario"
    assert len(result.stderr) < 400, f"{len(result.stderr)} characters:\n{result.stderr[:600]}"


def test_error_message_keeps_square_brackets_in_paths(tmp_path: Path) -> None:
    """File names are shown verbatim: brackets in a path are not console markup."""
    folder = tmp_path / "[draft]"
    folder.mkdir()
    scenario = folder / "scenario.toml"
    scenario.write_text('name = "x"\n\n[virality]\ninvites_per_usr = 2\n', encoding="utf-8")
    result = CliRunner().invoke(app, ["validate", str(scenario)])
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == 2
    assert str(scenario) in result.stderr, result.stderr


def test_error_message_survives_a_path_that_looks_like_a_closing_tag(tmp_path: Path) -> None:
    missing = tmp_path / "[" / "wip].toml"  # its text contains "[/wip]"
    result = CliRunner().invoke(app, ["validate", str(missing)])
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == 2
    assert str(missing) in result.stderr, result.stderr


def test_unwritable_events_path_is_bad_input(tmp_path: Path) -> None:
    target = tmp_path / "no_such_folder" / "events.csv"
    result = CliRunner().invoke(app, ["run", str(BASELINE), "--months", "1", "--events", str(target)])
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == 2
    assert "events.csv" in result.stderr


def test_out_path_that_is_a_file_is_bad_input(tmp_path: Path) -> None:
    target = tmp_path / "taken.txt"
    target.write_text("not a folder\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["run", str(BASELINE), "--months", "1", "--out", str(target)])
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == 2
    assert "taken.txt" in result.stderr


# --- runs that simulate ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def baseline_json(plgsim) -> dict:
    proc = plgsim("run", "scenarios/baseline.toml", "--months", "6", "--json")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one JSON object on stdout, got {len(lines)} lines"
    data = json.loads(lines[0])
    assert isinstance(data, dict)
    return data


def _is_number_or_null(value: object) -> bool:
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value))


def test_run_json_summary(baseline_json: dict) -> None:
    assert baseline_json["months"] == 6
    assert baseline_json["seed"] == 7  # from the file: simulation.seed
    summary = baseline_json["summary"]
    for key in SUMMARY_KEYS:
        assert key in summary, key
        assert _is_number_or_null(summary[key]), (key, summary[key])
    for key in ("users", "paying_accounts", "mrr", "arr", "viral_k"):
        assert summary[key] is not None and summary[key] > 0, (key, summary[key])
    assert summary["arr"] == pytest.approx(12 * summary["mrr"])


def test_run_json_monthly(baseline_json: dict) -> None:
    monthly = baseline_json["monthly"]
    for key in MONTHLY_KEYS:
        assert key in monthly, key
        assert isinstance(monthly[key], list) and len(monthly[key]) == 6, (key, monthly[key])
        assert all(_is_number_or_null(v) for v in monthly[key]), (key, monthly[key])
    assert monthly["month"] == list(range(6))
    assert all(v >= 0 for v in monthly["signups"])
    summary = baseline_json["summary"]
    assert summary["mrr"] == pytest.approx(monthly["mrr"][-1])
    assert summary["paying_accounts"] == monthly["paying_accounts"][-1]
    assert summary["users"] == monthly["active_users"][-1]


@pytest.fixture(scope="module")
def baseline_files(plgsim, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    """One 6-month run with --out, --events and --json together."""
    base = tmp_path_factory.mktemp("run")
    out, events = base / "out", base / "events.csv"
    proc = plgsim("run", BASELINE, "--months", "6", "--out", out, "--events", events, "--json")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    return out, events, json.loads(proc.stdout)


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_out_writes_monthly_summary_and_cohort_csvs(baseline_files: tuple[Path, Path, dict]) -> None:
    out, _, data = baseline_files
    for name in ("monthly.csv", "summary.csv", *COHORT_CSVS):
        assert (out / name).is_file(), name
    monthly = _read_csv(out / "monthly.csv")
    assert len(monthly) == 6
    assert [int(row["month"]) for row in monthly] == list(range(6))
    assert [float(row["signups"]) for row in monthly] == data["monthly"]["signups"]
    assert [float(row["mrr"]) for row in monthly] == pytest.approx(data["monthly"]["mrr"])
    summary = {row["metric"]: row["value"] for row in _read_csv(out / "summary.csv")}
    for key in SUMMARY_KEYS:
        assert key in summary, key
    assert float(summary["mrr"]) == pytest.approx(data["summary"]["mrr"])
    for name in COHORT_CSVS:
        rows = _read_csv(out / name)
        assert rows and "cohort" in rows[0], name
        assert [int(float(row["cohort"])) for row in rows] == list(range(6)), name


def test_events_log_counts_every_signup(baseline_files: tuple[Path, Path, dict]) -> None:
    _, events, data = baseline_files
    rows = _read_csv(events)
    assert rows, "empty event log"
    assert {"event", "user"} <= set(rows[0])
    signups = [row for row in rows if row["event"] == "signup"]
    assert len(signups) == sum(data["monthly"]["signups"])
    assert len(signups) == data["summary"]["signups_total"]
    assert len({row["user"] for row in signups}) == len(signups), "a user signed up twice"
    assert all(0 <= float(row["time_months"]) < 6 for row in rows)


def test_compare_prints_both_names_and_deltas(plgsim) -> None:
    proc = plgsim("compare", "scenarios/baseline.toml", "scenarios/referral_push.toml", "--months", "3")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "freemium baseline" in proc.stdout
    assert "referral push" in proc.stdout
    assert "Δ" in proc.stdout


def _run_json(*args: str) -> dict:
    result = CliRunner().invoke(app, ["run", str(BASELINE), "--months", "3", "--json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_seed_is_reproducible_and_matters() -> None:
    first, again, other = _run_json("--seed", "1"), _run_json("--seed", "1"), _run_json("--seed", "2")
    assert first["seed"] == 1 and other["seed"] == 2
    assert json.dumps(first, sort_keys=True) == json.dumps(again, sort_keys=True)
    assert first["monthly"]["signups"] != other["monthly"]["signups"]
    assert first["summary"] != other["summary"]


def test_max_users_stops_the_run_without_traceback(plgsim, tmp_path: Path) -> None:
    scenario = tmp_path / "crowded.toml"
    scenario.write_text(
        'name = "crowded"\n\n[simulation]\nmonths = 3\nmax_users = 50\n\n'
        "[acquisition.organic]\nsignups_per_month = 1000\n",
        encoding="utf-8",
    )
    proc = plgsim("run", scenario, "--json")
    assert proc.returncode != 0
    assert "max_users" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert proc.stdout == ""
    assert len([line for line in proc.stderr.splitlines() if line.strip()]) == 1, proc.stderr
