"""Replications on a real Dask cluster give the same numbers as replications on this machine.

plgsim promises that a job (a scenario and a seed) gives the same result wherever it runs, so
`--scheduler` must change where replications run and nothing else. These tests start a real
cluster the way a user would (`dask scheduler` and two `dask worker` processes, one thread
each, on 127.0.0.1 with ports chosen by the OS), then check that:

- `plgsim sweep --scheduler ...` writes sweep.csv and replications.csv byte-identical to the
  same sweep run locally, with the same result.json points, and that the cluster really ran
  every `simulate` job, spread over both workers (the scheduler's task stream says so);
- `simulator.run_many(..., executor=DaskExecutor(address))` gives the same KPI samples as
  `run_many` in this process;
- an unreachable scheduler is bad input: exit code 2 and one error line, no traceback, within
  the executor's connect timeout (10 s) plus start-up time.

The cluster is started once for the module and always stopped in the fixture's finalizer,
even when a test fails; the workers run in a scratch folder, not the project root, so they
only see the jobs they are sent.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from dask.distributed import Client, get_task_stream

import simulator
from simulator import cores

Plgsim = Callable[..., subprocess.CompletedProcess[str]]

STARTUP_TIMEOUT = 60.0
"""Seconds for the scheduler to write its address and for both workers to connect."""

STOP_TIMEOUT = 15.0
"""Seconds a cluster process gets to exit after SIGTERM before its process group is killed."""

WORKERS = 2

SWEEP_AXES = ("--set", "virality.invites_per_user=0.5,2", "--set", "pricing.plans.pro.price_per_seat=15,25")
SWEEP_POINTS = 4
SWEEP_REPS = 3


@dataclass(frozen=True)
class Cluster:
    """A running Dask cluster: its scheduler address, a client connected to it, its workers."""

    address: str
    client: Any  # dask.distributed.Client (untyped)
    workers: frozenset[str]


def _start(name: str, args: Sequence[str], directory: Path) -> subprocess.Popen[bytes]:
    """Start `python -m dask ARGS` (the `dask` command of this interpreter) in its own process
    group, in DIRECTORY (also its scratch space, which by default is /tmp/dask-scratch-space),
    logging to DIRECTORY/NAME.log (a file, so a full pipe can never block it)."""
    with open(directory / f"{name}.log", "wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "dask", *args],
            cwd=directory,
            env={**os.environ, "DASK_TEMPORARY_DIRECTORY": str(directory)},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _stop(processes: Sequence[subprocess.Popen[bytes]]) -> None:
    """SIGTERM each process (last started first), wait, and kill its process group (a worker's
    nanny and the worker it spawned) if it does not exit in time."""
    for process in reversed(processes):
        if process.poll() is None:
            process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=STOP_TIMEOUT)


def _logs(directory: Path) -> str:
    """The tail of every cluster log, for failure messages."""
    return "\n".join(
        f"--- {log.name}:\n" + "\n".join(log.read_text(errors="replace").splitlines()[-20:])
        for log in sorted(directory.glob("*.log"))
    )


def _scheduler_address(scheduler_file: Path, scheduler: subprocess.Popen[bytes], directory: Path) -> str:
    """The address the scheduler wrote to its --scheduler-file (polled until complete)."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if scheduler.poll() is not None:
            pytest.fail(f"the Dask scheduler exited with code {scheduler.returncode}\n{_logs(directory)}")
        try:
            return str(json.loads(scheduler_file.read_text())["address"])
        except (OSError, ValueError, KeyError):
            time.sleep(0.1)  # not written yet, or half written
    pytest.fail(f"the Dask scheduler wrote no address within {STARTUP_TIMEOUT:.0f} s\n{_logs(directory)}")


def _closed_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (the OS just handed it out and it was closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A Dask scheduler and two one-thread workers on 127.0.0.1, stopped when the module ends."""
    directory = tmp_path_factory.mktemp("dask-cluster")
    scheduler_file = directory / "scheduler.json"
    processes: list[subprocess.Popen[bytes]] = []
    client: Any = None
    try:
        # Port 0 everywhere: the OS picks free ports. --no-dashboard alone still serves HTTP
        # (health, metrics) on :8787, so the HTTP address gets port 0 too.
        local = ("--host", "127.0.0.1", "--no-dashboard", "--dashboard-address", "127.0.0.1:0")
        scheduler_args = ["scheduler", *local, "--port", "0", "--scheduler-file", str(scheduler_file)]
        processes.append(_start("scheduler", scheduler_args, directory))
        address = _scheduler_address(scheduler_file, processes[0], directory)
        for k in range(1, WORKERS + 1):
            worker_args = [
                "worker",
                address,
                *local,
                "--nthreads",
                "1",
                "--name",
                f"worker-{k}",
                "--local-directory",
                str(directory / f"worker-{k}"),
                "--death-timeout",
                "60",
            ]
            processes.append(_start(f"worker-{k}", worker_args, directory))
        client = Client(address, timeout=STARTUP_TIMEOUT)  # type: ignore[no-untyped-call]
        try:
            client.wait_for_workers(WORKERS, timeout=STARTUP_TIMEOUT)
        except TimeoutError:
            pytest.fail(f"{WORKERS} Dask workers did not connect within {STARTUP_TIMEOUT:.0f} s\n{_logs(directory)}")
        workers = frozenset(client.scheduler_info()["workers"])
        assert len(workers) == WORKERS, workers
        yield Cluster(address, client, workers)
    finally:
        if client is not None:
            client.close()
        _stop(processes)


def _simulate_tasks(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The task-stream records of `simulate` jobs (keys 'simulate_on_dask-<id>')."""
    return [r for r in records if str(r["key"]).startswith("simulate_on_dask-")]


def _json_points(directory: Path) -> Any:
    # NaN and infinities (should any appear) become strings, so that equal documents compare equal.
    return json.loads((directory / "result.json").read_text(encoding="utf-8"), parse_constant=str)["points"]


def test_sweep_on_dask_matches_local_sweep(cluster: Cluster, plgsim: Plgsim, data_dir: Path, tmp_path: Path) -> None:
    tiny = data_dir / "tiny.toml"
    on_dask, on_local = tmp_path / "dask", tmp_path / "local"
    common = ("sweep", tiny, *SWEEP_AXES, "--reps", str(SWEEP_REPS), "--quiet")

    with get_task_stream(client=cluster.client) as stream:
        dask_run = plgsim(*common, "--scheduler", cluster.address, "--out", on_dask, timeout=180)
    assert dask_run.returncode == 0, dask_run.stderr
    local_run = plgsim(*common, "--workers", "1", "--out", on_local, timeout=180)
    assert local_run.returncode == 0, local_run.stderr

    # The cluster ran every job exactly once, on both workers, and none failed.
    jobs = SWEEP_POINTS * SWEEP_REPS
    tasks = _simulate_tasks(stream.data)
    assert len(tasks) == jobs, [r["key"] for r in stream.data]
    assert {r["status"] for r in tasks} == {"OK"}, tasks
    assert {r["worker"] for r in tasks} == cluster.workers

    # Same seeds, same numbers: identical files, wherever the replications ran.
    for name in ("sweep.csv", "replications.csv"):
        assert (on_dask / name).read_bytes() == (on_local / name).read_bytes(), f"{name} differs"
    assert _json_points(on_dask) == _json_points(on_local)

    # ...and not identical because both are empty.
    with open(on_local / "replications.csv", newline="", encoding="utf-8") as handle:
        assert len(list(csv.DictReader(handle))) == jobs
    assert len(_json_points(on_local)) == SWEEP_POINTS


def test_run_many_on_dask_matches_in_process(cluster: Cluster, data_dir: Path) -> None:
    tiny = data_dir / "tiny.toml"
    with simulator.DaskExecutor(cluster.address) as executor, get_task_stream(client=cluster.client) as stream:
        assert executor.workers == WORKERS
        remote = simulator.run_many(tiny, reps=4, executor=executor)
    local = simulator.run_many(tiny, reps=4)

    assert len(_simulate_tasks(stream.data)) == 4, [r["key"] for r in stream.data]
    assert remote.seeds == local.seeds
    assert list(remote.kpi_samples) == list(local.kpi_samples)
    for key, samples in local.kpi_samples.items():
        assert samples.shape == (4,), key
        np.testing.assert_array_equal(remote.kpi_samples[key], samples, err_msg=key)  # NaNs compare equal
    assert np.isfinite(local.kpi_samples["users"]).all()
    # The two one-thread workers share this host's cores, as a local pool's workers do (so
    # that neither starts the fast engine's helper thread on a 2-core machine).
    share = max(1, cores.available_cores() // WORKERS)
    assert cluster.client.run(cores.cores_for_this_process) == {w: share for w in cluster.workers}


def test_unreachable_scheduler_is_one_error_line(plgsim: Plgsim, data_dir: Path, tmp_path: Path) -> None:
    address = f"tcp://127.0.0.1:{_closed_port()}"
    out = tmp_path / "out"
    started = time.monotonic()
    args = ("sweep", data_dir / "tiny.toml", *SWEEP_AXES, "--reps", "2", "--quiet", "--scheduler", address)
    result = plgsim(*args, "--out", out, timeout=60)
    elapsed = time.monotonic() - started

    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: cannot reach the Dask scheduler at " + address), lines[0]
    assert result.stdout == ""
    assert not out.exists(), "nothing is written when the scheduler cannot be reached"
    # DaskExecutor gives up after a 10 s connect timeout; the rest is start-up.
    assert elapsed < 40, f"took {elapsed:.1f} s to report an unreachable scheduler"
