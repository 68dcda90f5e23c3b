"""Batch runs through the `plgsim` command: deterministic files, resume after a kill, clean
Ctrl-C, failures recorded without stopping the others, and run/compare/sweep with --reps.

Each test runs the real console script in a subprocess, as a script or a cron job would.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

TINY = Path(__file__).parent / "data" / "tiny.toml"
Plgsim = Callable[..., subprocess.CompletedProcess[str]]


def _scenario(folder: Path, name: str, body: str = "") -> Path:
    path = folder / f"{name}.toml"
    path.write_text(f'extends = "{TINY.as_posix()}"\nname = "{name}"\n{body}', encoding="utf-8")
    return path


@pytest.fixture
def sources(tmp_path: Path) -> Path:
    """Four quick scenarios (one a sweep) in a folder."""
    folder = tmp_path / "scenarios"
    folder.mkdir()
    for i, name in enumerate(("alpha", "bravo", "charlie")):
        _scenario(folder, name, f"[simulation]\nseed = {100 + i}\n")
    _scenario(folder, "delta", '[sweep]\n"virality.acceptance_rate" = [0.2, 0.4]\n')
    return folder


def _result_files(out: Path) -> dict[str, bytes]:
    """Every CSV and result JSON under `out` (the manifest holds clocks and is left out)."""
    return {
        str(p.relative_to(out)): p.read_bytes()
        for p in sorted(out.rglob("*"))
        if p.suffix in (".csv", ".json") and p.name != "manifest.json" and not p.parent.name.startswith(".tmp")
    }


def _manifest(out: Path) -> dict[str, dict[str, object]]:
    items: dict[str, dict[str, object]] = json.loads((out / "manifest.json").read_text(encoding="utf-8"))["items"]
    return items


def _popen(*args: str | Path) -> subprocess.Popen[str]:
    env = {**os.environ, "NO_COLOR": "1", "TERM": "dumb"}
    return subprocess.Popen(
        ["plgsim", *map(str, args)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _wait_for_done(out: Path, count: int, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        manifest = out / "manifest.json"
        if manifest.exists():
            try:
                done = [i for i in _manifest(out).values() if i["status"] == "done"]
            except json.JSONDecodeError:
                pytest.fail("the manifest was read half-written")
            if len(done) >= count:
                return
        assert proc.poll() is None, "the batch ended before it could be interrupted"
        time.sleep(0.05)
    pytest.fail(f"no {count} finished items within {timeout} s")


def test_same_command_gives_byte_identical_result_files(plgsim: Plgsim, sources: Path, tmp_path: Path) -> None:
    first = plgsim("batch", sources, "--reps", "3", "--out", tmp_path / "one", "--quiet", "--workers", "2")
    second = plgsim("batch", sources, "--reps", "3", "--out", tmp_path / "two", "--quiet", "--workers", "1")
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    one, two = _result_files(tmp_path / "one"), _result_files(tmp_path / "two")
    assert set(one) >= {"summary.csv", "alpha/summary.csv", "alpha/monthly.csv", "delta/sweep.csv"}
    assert one == two
    manifest = _manifest(tmp_path / "one")
    assert set(manifest) == {"alpha", "bravo", "charlie", "delta"}
    for entry in manifest.values():
        assert entry["status"] == "done" and entry["reps"] == 3 and len(str(entry["hash"])) == 64
        assert entry["started"] and entry["finished"] and entry["version"]
    summary = (tmp_path / "one" / "summary.csv").read_text(encoding="utf-8").splitlines()
    assert summary[0].startswith("item,point,") and len(summary) == 1 + 3 + 2  # delta has two grid points
    assert "virality.acceptance_rate=0.4" in summary[-1]


def test_rerun_skips_finished_items_and_reruns_changed_ones(plgsim: Plgsim, sources: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert plgsim("batch", sources, "--reps", "2", "--out", out, "--workers", "1").returncode == 0
    before = _result_files(out)
    (sources / "bravo.toml").write_text(
        (sources / "bravo.toml").read_text(encoding="utf-8") + "[virality]\ninvites_per_user = 3.0\n",
        encoding="utf-8",
    )
    again = plgsim("batch", sources, "--reps", "2", "--out", out, "--workers", "1")
    assert again.returncode == 0, again.stderr
    assert "skipped alpha" in again.stderr and "done bravo" in again.stderr
    after = _result_files(out)
    assert after["alpha/replications.csv"] == before["alpha/replications.csv"]
    assert after["bravo/replications.csv"] != before["bravo/replications.csv"]


def test_killed_batch_resumes_to_the_uninterrupted_result(plgsim: Plgsim, sources: Path, tmp_path: Path) -> None:
    # Replications enough for an item to take far longer (about half a second) than the 50 ms
    # between looks at the manifest, so that the kill lands midway.
    reference = tmp_path / "reference"
    assert plgsim("batch", sources, "--reps", "100", "--out", reference, "--quiet", "--workers", "1").returncode == 0

    out = tmp_path / "killed"
    proc = _popen("batch", sources, "--reps", "100", "--out", out, "--quiet", "--workers", "1")
    _wait_for_done(out, 1, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    manifest = _manifest(out)
    done = {name for name, entry in manifest.items() if entry["status"] == "done"}
    assert 1 <= len(done) < 4, "the kill must land midway"
    # Nothing under an item's final name unless the manifest says it is complete.
    finished_folders = {p.name for p in out.iterdir() if p.is_dir() and not p.name.startswith(".")}
    assert finished_folders == done

    resumed = plgsim("batch", sources, "--reps", "100", "--out", out, "--workers", "1")
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stderr.count("(already done, same hash)") == len(done)
    assert _result_files(out) == _result_files(reference)
    assert not list(out.glob(".tmp-*")), "temporary folders are cleaned up"


def test_ctrl_c_stops_cleanly_and_keeps_what_finished(sources: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    # Enough replications that an item takes far longer (about a second on 2 workers) than the
    # 50 ms between looks at the manifest: with 8, an item took about 25 ms with the fast
    # engine, and two more could finish between the first one and the signal.
    proc = _popen("batch", sources, "--reps", "400", "--out", out, "--workers", "2")
    _wait_for_done(out, 1, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "interrupted" in err and "Traceback" not in err
    done = {name for name, entry in _manifest(out).items() if entry["status"] == "done"}
    assert done and all((out / name / "result.json").exists() for name in done)
    # It stopped instead of finishing the queue: at most the item in flight completed after the signal.
    assert len(done) <= 2, f"{len(done)} of 4 items finished after Ctrl-C"
    assert not (out / "summary.csv").exists(), "no combined summary for an interrupted batch"


def test_ctrl_c_never_hangs_a_batch_of_many_replications(sources: Path, tmp_path: Path) -> None:
    # 15,000 jobs: an interrupt that landed while the parent held a pending job's lock (inside
    # concurrent.futures.wait, which takes them all on each call) hung the command in 3 of 6
    # such runs before the executor handed finished jobs over through a queue.
    for attempt in range(3):
        out = tmp_path / f"out{attempt}"
        proc = _popen("batch", sources, "--reps", "3000", "--out", out, "--workers", "2")
        _wait_for_done(out, 1, proc)
        proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            pytest.fail(f"attempt {attempt + 1}: still running 30 s after Ctrl-C")
        assert proc.returncode == 130, err


def test_failed_items_are_recorded_and_the_others_complete(plgsim: Plgsim, sources: Path, tmp_path: Path) -> None:
    (sources / "broken.toml").write_text('extends = "alpha.toml"\n[virality]\nacceptance_rat = 0.3\n', encoding="utf-8")
    _scenario(sources, "capped", "[simulation]\nmax_users = 50\n")
    out = tmp_path / "out"
    proc = plgsim("batch", sources, "--reps", "2", "--out", out, "--workers", "1")
    assert proc.returncode == 2, "a bad file in the batch is bad input"
    assert "broken.toml: virality.acceptance_rat: unknown key; did you mean 'acceptance_rate'?" in proc.stderr
    assert "Traceback" not in proc.stderr
    manifest = _manifest(out)
    assert manifest["broken"]["status"] == "failed" and "acceptance_rat" in str(manifest["broken"]["error"])
    assert manifest["capped"]["status"] == "failed" and "max_users" in str(manifest["capped"]["error"])
    assert all(manifest[name]["status"] == "done" for name in ("alpha", "bravo", "charlie", "delta"))
    assert not (out / "capped").exists()
    rows = (out / "summary.csv").read_text(encoding="utf-8").splitlines()
    assert len(rows) == 1 + 3 + 2

    (sources / "broken.toml").unlink()
    rerun = plgsim("batch", sources, "--reps", "2", "--out", out, "--workers", "1")
    assert rerun.returncode == 1, "a run that fails (not bad input) exits 1"
    assert "capped" in rerun.stderr


def test_unreadable_manifest_is_bad_input(plgsim: Plgsim, sources: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "manifest.json").write_text("{not json", encoding="utf-8")
    proc = plgsim("batch", sources, "--out", out)
    assert proc.returncode == 2
    assert "manifest.json: not a readable batch manifest" in proc.stderr and "Traceback" not in proc.stderr


def test_run_with_reps_reports_spreads_and_targets(plgsim: Plgsim, tmp_path: Path) -> None:
    proc = plgsim("run", TINY, "--reps", "4", "--json", "--quiet", "--target", "mrr>=0", "--out", tmp_path)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["reps"] == 4 and len(data["replication_seeds"]) == 4
    assert set(data["summary"]["nrr_12m"]) == {"p10", "p50", "p90", "mean", "stderr", "n"}
    assert data["targets"] == [{"target": "mrr>=0", "probability": 1, "stderr": 0, "met": 4, "n": 4}]
    assert (tmp_path / "targets.csv").read_text(encoding="utf-8").splitlines()[1] == "mrr>=0,1,0,4,4"

    # Replication 2 alone, from the seed in replications.csv (exact: 63-bit integers), is the same run.
    row = (tmp_path / "replications.csv").read_text(encoding="utf-8").splitlines()[3].split(",")
    assert int(row[1]) == data["replication_seeds"][2]
    alone = plgsim("run", TINY, "--seed", row[1], "--json")
    assert json.loads(alone.stdout)["summary"]["mrr"] == float(row[5])

    table = plgsim("compare", TINY, TINY, "--reps", "3", "--target", "viral_k<0.5")
    assert table.returncode == 0 and "median [P10 – P90] of 3 replications" in table.stdout
    assert "P(viral_k<0.5)" in table.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("run", TINY, "--reps", "2", "--target", "nrr>=1.1"), "unknown KPI 'nrr'; did you mean 'nrr_12m'"),
        (("run", TINY, "--target", "nrr_12m=>1.1"), "write KEY>=NUMBER"),
        (("run", TINY, "--reps", "2", "--events", "e.csv"), "--events logs one run"),
        (("sweep", TINY, "--set", "pricing.plans.pro.price=10:60:5"), "did you mean 'price_per_seat'?"),
        (("sweep", TINY, "--set", "virality.acceptance_rate=0.5,1.5"), "allowed: 0.0 to 1.0"),
        (("sweep", TINY, "--set", "virality.invites_per_user=1:0:1"), "never gets from"),
        (("sweep", TINY), "a sweep needs at least one axis"),
        (("run", TINY, "--reps", "2", "--workers", "0"), "--workers"),
        (("run", TINY, "--reps", "2", "--scheduler", "bogus://x:1"), "not a scheduler address"),
    ],
)
def test_bad_options_exit_2_with_one_message(plgsim: Plgsim, args: tuple[str | Path, ...], message: str) -> None:
    proc = plgsim(*args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_sweep_prints_a_table_and_writes_one_row_per_point(plgsim: Plgsim, tmp_path: Path) -> None:
    proc = plgsim(
        "sweep", TINY, "--set", "pricing.plans.pro.price_per_seat=15:25:5", "--set", "virality.invites_per_user=0.5,2",
        "--reps", "2", "--out", tmp_path, "--target", "mrr>=5000",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "shared seeds" in proc.stdout
    rows = (tmp_path / "sweep.csv").read_text(encoding="utf-8").splitlines()
    assert rows[0].startswith("pricing.plans.pro.price_per_seat,virality.invites_per_user,users_p50,")
    assert [r.split(",")[:2] for r in rows[1:]] == [[p, v] for p in ("15", "20", "25") for v in ("0.5", "2")]


def test_compare_reads_rows_at_the_month_they_name_whatever_the_horizons(plgsim: Plgsim, tmp_path: Path) -> None:
    """tiny over 8 and 10 months: the 'month 8 (horizon)' row must compare both at month 8,
    where the two runs are identical draw for draw (the longer one just goes on)."""
    longer = _scenario(tmp_path, "longer", "[simulation]\nmonths = 10\n")
    proc = plgsim("compare", TINY, longer)
    assert proc.returncode == 0, proc.stderr
    row = next(line for line in proc.stdout.splitlines() if "MRR, month 8 (horizon)" in line)
    assert "(Δ 0 USD)" in row, row
