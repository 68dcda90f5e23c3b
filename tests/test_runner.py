"""Monte Carlo replications, sweeps and executors through the Python API.

Seeds: replication i is reproducible alone from its seed, independent of how many replications
run, and no two replications are the same draw. Executors: a local pool gives exactly what
one process gives. Sweeps: every grid point uses the same seeds (common random numbers).
"""

from __future__ import annotations

import gc
import itertools
import multiprocessing
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import simulator
from simulator import cores
from simulator.runner import executors
from simulator.runner.executors import LocalExecutor
from simulator.runner.seeds import replication_seeds
from simulator.runner.stats import parse_target

TINY = Path(__file__).parent / "data" / "tiny.toml"


@pytest.fixture(scope="module")
def ensemble() -> simulator.Ensemble:
    return simulator.run_many(TINY, reps=5)


def _same(a: float, b: float) -> bool:
    return a == b or (np.isnan(a) and np.isnan(b))


def test_replication_seeds_are_prefix_stable_distinct_and_fit_64_bits() -> None:
    seeds = replication_seeds(11, 50)
    assert replication_seeds(11, 5) == seeds[:5], "more replications must extend, not change, the first ones"
    assert len(set(seeds)) == 50
    assert all(0 <= s < 2**63 for s in seeds)
    assert set(replication_seeds(12, 50)).isdisjoint(seeds)
    with pytest.raises(ValueError):
        replication_seeds(11, 0)


def test_replication_alone_equals_replication_inside_run_many(ensemble: simulator.Ensemble) -> None:
    assert ensemble.seeds == replication_seeds(11, 5)
    for i in (0, 3):
        alone = simulator.run(TINY, seed=ensemble.seeds[i])
        inside = ensemble.runs[i]
        assert all(_same(alone.kpis[k], inside.kpis[k]) for k in alone.kpis)
        for name, series in inside.monthly.items():
            np.testing.assert_array_equal(series, alone.monthly[name])


def test_no_two_replications_are_the_same_draw(ensemble: simulator.Ensemble) -> None:
    for a, b in itertools.combinations(ensemble.runs, 2):
        assert not np.array_equal(a.monthly["signups"], b.monthly["signups"])
        assert a.kpis["mrr"] != b.kpis["mrr"]


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_local_pool_gives_exactly_what_one_process_gives(
    ensemble: simulator.Ensemble, method: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"this platform cannot {method} processes")
    if method == "fork" and threading.active_count() > 1:
        pytest.skip("threads left by other tests: forking now would copy their locks")
    monkeypatch.setattr(executors, "start_method", lambda: method)
    with LocalExecutor(workers=2) as pool:
        pooled = simulator.run_many(TINY, reps=5, executor=pool)
    assert pooled.seeds == ensemble.seeds
    for key, values in ensemble.kpi_samples.items():
        np.testing.assert_array_equal(pooled.kpi_samples[key], values, err_msg=key)
    np.testing.assert_array_equal(pooled.monthly_samples["mrr"], ensemble.monthly_samples["mrr"])


def test_summary_statistics_are_those_of_the_replications(ensemble: simulator.Ensemble) -> None:
    data = ensemble.to_json()
    assert data["reps"] == 5 and data["replication_seeds"] == list(ensemble.seeds)
    for key in ("mrr", "users", "ltv_to_cac"):
        values = ensemble.kpi_samples[key]
        entry = data["summary"][key]
        assert set(entry) == {"p10", "p50", "p90", "mean", "stderr", "n"}
        assert entry["p10"] == pytest.approx(np.quantile(values, 0.1), rel=1e-12)
        assert entry["p50"] == pytest.approx(np.median(values), rel=1e-12)
        assert entry["stderr"] == pytest.approx(np.std(values, ddof=1) / np.sqrt(5), rel=1e-12)
    horizon = data["checkpoints"]["horizon"]["mrr"]
    assert horizon["mean"] == pytest.approx(ensemble.kpi_samples["mrr"].mean())
    monthly = data["monthly"]["mrr"]
    assert monthly["p50"] == pytest.approx(list(np.median(ensemble.monthly_samples["mrr"], axis=0)))


def test_target_probability_counts_replications(ensemble: simulator.Ensemble) -> None:
    values = ensemble.kpi_samples["mrr"]
    threshold = float(np.median(values))
    outcome = ensemble.probability(parse_target(f"mrr>={threshold}"))
    assert outcome.met == int((values >= threshold).sum()) and outcome.n == 5


def test_written_files_are_deterministic_and_frames_match(ensemble: simulator.Ensemble, tmp_path: Path) -> None:
    first = ensemble.write(tmp_path / "a")
    again = simulator.run_many(TINY, reps=5).write(tmp_path / "b")
    for path in first:
        if path.suffix in (".csv", ".json"):
            assert path.read_bytes() == (tmp_path / "b" / path.name).read_bytes(), path.name
    assert {p.name for p in again} >= {"summary.csv", "monthly.csv", "replications.csv", "result.json"}
    frame = ensemble.to_pandas()
    assert len(frame) == 5 and list(frame["seed"]) == list(ensemble.seeds)
    np.testing.assert_array_equal(frame["mrr"].to_numpy(), ensemble.kpi_samples["mrr"])
    import pandas as pd

    from_parquet = pd.read_parquet(tmp_path / "a" / "replications.parquet")
    np.testing.assert_array_equal(from_parquet["mrr"].to_numpy(), ensemble.kpi_samples["mrr"])
    assert list(from_parquet["seed"]) == list(ensemble.seeds)
    months = simulator.run(TINY).to_pandas()
    assert len(months) == 8 and "mrr" in months.columns


def test_sweep_points_share_random_numbers() -> None:
    """Gross margin enters no random decision: every point must simulate the same users and
    revenue draw for draw, and differ only in margin-based KPIs."""
    result = simulator.sweep(TINY, {"costs.gross_margin": [0.6, 0.9]}, reps=2)
    low, high = result.ensembles
    assert low.seeds == high.seeds
    np.testing.assert_array_equal(low.monthly_samples["mrr"], high.monthly_samples["mrr"])
    np.testing.assert_array_equal(low.kpi_samples["users"], high.kpi_samples["users"])
    assert (high.kpi_samples["ltv"] > low.kpi_samples["ltv"]).all()
    header, rows = result.table(["ltv"])
    assert header == ["costs.gross_margin", "ltv_p50", "ltv_p10", "ltv_p90", "ltv_mean", "ltv_stderr"]
    assert [row[0] for row in rows] == [0.6, 0.9]


def test_sweep_point_equals_run_many_of_the_same_variant() -> None:
    result = simulator.sweep(TINY, {"virality.invites_per_user": [0.5, 2.0]}, reps=2)
    variant = simulator.load_scenario(TINY, {"virality.invites_per_user": 2.0})
    direct = simulator.run_many(variant, reps=2)
    np.testing.assert_array_equal(result.ensembles[1].kpi_samples["users"], direct.kpi_samples["users"])
    assert result.ensembles[1].kpis["viral_k"].p50 > result.ensembles[0].kpis["viral_k"].p50


def test_a_failing_replication_raises_with_its_seed() -> None:
    capped = simulator.load_scenario(TINY, {"simulation.max_users": 100})
    with pytest.raises(simulator.ReplicationError, match="replication with seed"):
        simulator.run_many(capped, reps=2)


def test_workers_are_forked_only_while_this_process_runs_one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    # Forking copies the parent's imports (a faster start) but also any lock another thread
    # holds: with a second thread running (a progress bar, a UI), workers are spawned.
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        assert executors.start_method() == "spawn"
    finally:
        stop.set()
        other.join()
    monkeypatch.setattr(threading, "active_count", lambda: 1)  # other tests may leave threads
    expected = "fork" if sys.platform.startswith("linux") else "spawn"
    assert executors.start_method() == expected


def _freeze_count(job: executors.Job) -> executors.Outcome:
    """Stands in for `simulate` in forked workers: reports how many objects the worker
    inherited frozen (in the failure's message, the one text an outcome carries)."""
    return executors.RunFailure(job.seed, str(gc.get_freeze_count()))


def _cores_seen(job: executors.Job) -> executors.Outcome:
    """Stands in for `simulate` in forked workers: reports the cores the worker may keep busy."""
    return executors.RunFailure(job.seed, str(cores.cores_for_this_process()))


def _reports_of_forked_workers(
    monkeypatch: pytest.MonkeyPatch, stand_in: Callable[[executors.Job], executors.Outcome], jobs: int
) -> list[int]:
    """What `stand_in` reports from each of `jobs` jobs run on a forking pool of 2 workers."""
    if threading.active_count() > 1:
        pytest.skip("threads left by other tests: forking now would copy their locks")
    monkeypatch.setattr(executors, "start_method", lambda: "fork")
    monkeypatch.setattr(executors, "simulate", stand_in)
    scenario = simulator.load_scenario(TINY)
    with LocalExecutor(2) as pool:
        outcomes = [outcome for _, outcome in pool.run([executors.Job(scenario=scenario, seed=s) for s in range(jobs)])]
    return [int(outcome.message) for outcome in outcomes if isinstance(outcome, executors.RunFailure)]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="workers are forked on Linux only")
def test_forked_workers_inherit_the_parents_objects_frozen_and_the_parent_unfreezes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Forked workers would otherwise traverse (and so copy) every object they inherit.
    frozen = _reports_of_forked_workers(monkeypatch, _freeze_count, jobs=2)
    assert len(frozen) == 2 and min(frozen) > 1000
    assert gc.get_freeze_count() == 0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="workers are forked on Linux only")
def test_pool_workers_split_the_cores_so_they_start_no_helper_threads_of_their_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen = _reports_of_forked_workers(monkeypatch, _cores_seen, jobs=3)
    assert seen == [max(1, cores.available_cores() // 2)] * 3
    assert cores.cores_for_this_process() == cores.available_cores(), "the parent keeps all its cores"


def test_a_process_sharing_the_cores_gets_its_part_and_at_least_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cores, "available_cores", lambda: 8)
    monkeypatch.setattr(cores, "_sharing_processes", 1)
    assert cores.cores_for_this_process() == 8
    cores.share_cores(3)
    assert cores.cores_for_this_process() == 2
    cores.share_cores(16)
    assert cores.cores_for_this_process() == 1
