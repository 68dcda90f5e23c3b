"""Engine speed against a naive SimPy model, scaling, peak memory and replications on 2 cores.

Every figure and every ratio comes from one invocation, so a ratio never mixes two states of a
shared machine. Prints one JSON object with --json (a short table otherwise):

- throughput (simulated users per second of wall time, and per second of CPU time) of the
  naive SimPy model (benchmarks/naive_simpy.py), the SimPy engine and the fast engine on the
  scenarios of benchmarks/scenarios/ (about 10^4, 10^5 and 10^6 signups in 36 months);
- `ratios.fast_vs_naive`, `ratios.simpy_vs_naive` and `ratios.fast_vs_simpy`, taken at the
  largest size that both sides ran (the JSON says which), and the same ratios at every size,
  also per CPU second;
- the fast engine's peak resident memory on the 10^6 scenario, measured in a fresh process;
- the wall time of 100 replications of the 10^5 scenario with the fast engine on a local pool
  of 2 worker processes (the pool's start-up included);
- each target, reported as met or not met (never asserted).

    python benchmarks/run.py --json [--out FILE] [--quick] [--skip-slow-1m] [--parts scaling memory replications]

The full run takes about 100 s on 2 idle cores, 70 s of them the naive model and the SimPy
engine at 10^6 (--skip-slow-1m leaves those two out). --quick is a smoke
version (under a minute): 10^4 signups only, memory on 10^5, 10 replications of 10^4. Its
figures are not comparable with the targets, and say so.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import importlib.util
import inspect
import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import simpy
from naive_simpy import run_naive  # beside this file, which Python puts first on sys.path

import simulator
from simulator import LocalExecutor, Scenario, load_scenario
from simulator.cores import available_cores

HERE = Path(__file__).resolve().parent

SCENARIOS = {
    "10k": HERE / "scenarios" / "signups_10k.toml",
    "100k": HERE / "scenarios" / "signups_100k.toml",
    "1m": HERE / "scenarios" / "signups_1m.toml",
}
NOMINAL_SIGNUPS = {"10k": 10_000, "100k": 100_000, "1m": 1_000_000}
ENGINES = ("naive", "simpy", "fast")
PARTS = ("scaling", "memory", "replications")

TARGETS = {
    "fast_vs_naive": 100.0,  # fast engine at least 100× the naive model's users per second
    "simpy_vs_naive": 3.0,  # SimPy engine at least 3× the naive model
    "fast_peak_memory_bytes_1m": 2e9,  # at most 2 GB (10^9 bytes) resident at 10^6 signups
    "replications_seconds": 10.0,  # 100 replications of 10^5 signups within 10 s on 2 cores
}
REPEAT_UNDER_SECONDS = 10.0
"""Runs shorter than this are repeated (3 times in all, fastest kept), for every engine: the
first run of a process pays for fresh memory and caches, and the shorter the run the larger
that share (the first run's time is reported too)."""

Runner = Callable[[Scenario, int], int]


def log(message: str) -> None:
    """Progress on stderr, so stdout stays one JSON object."""
    print(f"[{dt.datetime.now(dt.UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


# --- engines ---------------------------------------------------------------------------------
def fast_engine_status() -> str | None:
    """Why the fast engine cannot run here, or None if it can."""
    if importlib.util.find_spec("simulator.engines.fast_engine") is None:
        return "simulator/engines/fast_engine.py does not exist yet"
    if "engine" not in inspect.signature(simulator.run).parameters:
        return "simulator.run has no `engine` argument yet"
    return None


def _engine_kwargs(engine: str) -> dict[str, Any]:
    # Before engine selection exists, simulator.run is the SimPy engine and takes no `engine`.
    if "engine" in inspect.signature(simulator.run).parameters:
        return {"engine": engine}
    return {}


def runner(engine: str) -> Runner:
    """A function running one replication with `engine` and returning its simulated users."""
    if engine == "naive":
        return lambda scenario, seed: run_naive(scenario, seed).users
    kwargs = _engine_kwargs(engine)

    def run_engine(scenario: Scenario, seed: int) -> int:
        return simulator.run(scenario, seed=seed, **kwargs).ledger.users

    return run_engine


def timed(run: Runner, scenario: Scenario, seed: int, repeat: int) -> dict[str, Any]:
    """Wall and CPU time of one replication (the fastest of `repeat`, more for short runs)."""
    best_wall, best_cpu, first_wall, users, runs = float("inf"), float("inf"), 0.0, 0, 0
    while runs < max(repeat, 1) or (best_wall < REPEAT_UNDER_SECONDS and runs < 3):
        gc.collect()  # a run is not charged for collecting the garbage that earlier runs left
        cpu = time.process_time()
        start = time.perf_counter()
        users = run(scenario, seed)
        wall = time.perf_counter() - start
        cpu = time.process_time() - cpu
        runs += 1
        first_wall = first_wall or wall
        if wall < best_wall:
            best_wall, best_cpu = wall, cpu
    return {
        "simulated_users": users,
        "wall_seconds": round(best_wall, 4),
        "first_wall_seconds": round(first_wall, 4),
        "cpu_seconds": round(best_cpu, 4),
        "users_per_second": round(users / best_wall, 1),
        "users_per_cpu_second": round(users / best_cpu, 1) if best_cpu > 0 else None,
        "runs": runs,
    }


# --- parts -----------------------------------------------------------------------------------
def measure_scaling(
    engines: list[str], sizes: list[str], seed: int, repeat: int, skip_slow_1m: bool
) -> dict[str, dict[str, Any]]:
    """Time each engine at each size: {size: {engine: figures}}."""
    table: dict[str, dict[str, Any]] = {}
    for size in sizes:
        scenario = load_scenario(SCENARIOS[size])
        row: dict[str, Any] = {
            "scenario": str(SCENARIOS[size].relative_to(HERE.parent)),
            "nominal_signups": NOMINAL_SIGNUPS[size],
        }
        for engine in engines:
            if engine != "fast" and size == "1m" and skip_slow_1m:
                row[engine] = {"skipped": "--skip-slow-1m"}
                continue
            if engine == "fast" and (reason := fast_engine_status()) is not None:
                row[engine] = {"unavailable": reason}
                continue
            log(f"scaling: {engine} on {size}")
            try:
                row[engine] = timed(runner(engine), scenario, seed, repeat)
            except Exception as exc:  # one failing engine must not lose the other figures
                row[engine] = {"error": f"{type(exc).__name__}: {exc}"}
            log(f"  {row[engine]}")
        table[size] = row
    return table


RATIOS = (("fast", "naive"), ("simpy", "naive"), ("fast", "simpy"))


def _rate(cell: Any, key: str) -> float | None:
    return cell.get(key) if isinstance(cell, dict) else None


def ratios_from(table: dict[str, dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The headline ratios (users per second of wall time), each at the largest size both
    engines ran, and the ratios by size, also per second of CPU time (less sensitive to
    neighbours on a shared machine)."""
    by_size: dict[str, dict[str, float | None]] = {}
    for size, row in table.items():
        by_size[size] = {}
        for engine, base in RATIOS:
            for key, suffix in (("users_per_second", ""), ("users_per_cpu_second", "_cpu")):
                top, bottom = _rate(row.get(engine), key), _rate(row.get(base), key)
                by_size[size][f"{engine}_vs_{base}{suffix}"] = round(top / bottom, 2) if top and bottom else None
    headline: dict[str, Any] = {}
    for engine, base in RATIOS:
        key = f"{engine}_vs_{base}"
        measured = [size for size in table if by_size[size][key] is not None]
        if measured:
            size = max(measured, key=lambda s: NOMINAL_SIGNUPS[s])
            headline[key] = by_size[size][key]
            headline[f"{key}_scenario"] = table[size]["scenario"]
        else:
            headline[key] = None
    return headline, by_size


def measure_memory(size: str, seed: int) -> dict[str, Any]:
    """Peak resident memory of the fast engine on `size`, in a fresh interpreter."""
    if (reason := fast_engine_status()) is not None:
        return {"unavailable": reason}
    log(f"memory: fast on {size} in a fresh process")
    command = [sys.executable, str(Path(__file__).resolve()), "--child-memory", size, "--seed", str(seed)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"}
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    figures["scenario"] = str(SCENARIOS[size].relative_to(HERE.parent))
    log(f"  {figures}")
    return figures


def _peak_rss_bytes(who: int = resource.RUSAGE_SELF) -> int:
    peak = resource.getrusage(who).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # Linux reports KiB


def child_memory(size: str, seed: int) -> None:
    """Run in the fresh interpreter: one fast-engine run, then the process's peak memory."""
    scenario = load_scenario(SCENARIOS[size])
    before = _peak_rss_bytes()
    start = time.perf_counter()
    result = simulator.run(scenario, seed=seed, **_engine_kwargs("fast"))
    seconds = time.perf_counter() - start
    after_run = _peak_rss_bytes()
    _ = result.summary  # the KPIs are part of what a caller asks for
    print(
        json.dumps(
            {
                "simulated_users": result.ledger.users,
                "wall_seconds": round(seconds, 3),
                "peak_rss_bytes_after_imports": before,
                "peak_rss_bytes": after_run,
                "peak_rss_mib": round(after_run / 2**20, 1),
                "peak_rss_bytes_with_kpis": _peak_rss_bytes(),
            }
        )
    )


def measure_replications(size: str, reps: int, workers: int, seed: int) -> dict[str, Any]:
    """Wall time of `reps` fast-engine replications of `size` on a pool of `workers` processes."""
    if (reason := fast_engine_status()) is not None:
        return {"unavailable": reason}
    scenario = load_scenario(SCENARIOS[size])
    log(f"replications: {reps} × fast on {size}, {workers} workers")
    gc.collect()  # the garbage the timed runs before left (the SimPy models' cycles: seconds)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    try:
        # The pool's start-up (starting worker processes, forked or spawned: see start_method) is
        # counted: it is part of what a caller waits for.
        with LocalExecutor(workers) as pool:
            ensemble = simulator.run_many(scenario, reps=reps, seed=seed, executor=pool, **_engine_kwargs("fast"))
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    users = [run.simulated_users for run in ensemble.runs]
    figures = {
        "scenario": str(SCENARIOS[size].relative_to(HERE.parent)),
        "engine": "fast",
        "reps": reps,
        "workers": workers,
        "wall_seconds": round(seconds, 3),
        # Worker processes are reaped when the pool closes, so their CPU time shows up here.
        "workers_cpu_seconds": round(after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime, 3),
        "simulated_users_median": int(np.median(users)),
        "simulated_users_total": int(sum(users)),
        "users_per_second": round(sum(users) / seconds, 1),
    }
    log(f"  {figures}")
    return figures


# --- targets and context ---------------------------------------------------------------------
def _met(value: float | None, limit: float, at_least: bool) -> bool | None:
    if value is None:
        return None
    return value >= limit if at_least else value <= limit


def assess(report: dict[str, Any], quick: bool) -> dict[str, Any]:
    """Each target with the value measured and whether it is met (None: not measured as stated)."""
    ratios = report.get("ratios", {})
    memory = report.get("memory", {})
    reps = report.get("replications", {})
    memory_at_target = memory.get("scenario", "").endswith("signups_1m.toml")
    reps_at_target = reps.get("reps") == 100 and reps.get("scenario", "").endswith("signups_100k.toml")
    peak = memory.get("peak_rss_bytes") if memory_at_target else None
    seconds = reps.get("wall_seconds") if reps_at_target else None
    note = "quick run: measured at 10^4 signups, not at the target's size" if quick else None
    return {
        "fast_vs_naive_at_least_100": {
            "value": ratios.get("fast_vs_naive"),
            "at": ratios.get("fast_vs_naive_scenario"),
            "met": _met(ratios.get("fast_vs_naive"), TARGETS["fast_vs_naive"], at_least=True),
            **({"note": note} if note else {}),
        },
        "simpy_vs_naive_at_least_3": {
            "value": ratios.get("simpy_vs_naive"),
            "at": ratios.get("simpy_vs_naive_scenario"),
            "met": _met(ratios.get("simpy_vs_naive"), TARGETS["simpy_vs_naive"], at_least=True),
            **({"note": note} if note else {}),
        },
        "fast_peak_memory_at_most_2gb_at_1m": {
            "value_bytes": peak,
            "limit_bytes": int(TARGETS["fast_peak_memory_bytes_1m"]),
            "met": _met(peak, TARGETS["fast_peak_memory_bytes_1m"], at_least=False),
            **({} if memory_at_target else {"note": "not measured on the 10^6 scenario in this run"}),
        },
        "replications_100_of_100k_within_10s_on_2_cores": {
            "value_seconds": seconds,
            "workers": reps.get("workers"),
            "met": _met(seconds, TARGETS["replications_seconds"], at_least=False),
            **({} if reps_at_target else {"note": "not measured as 100 replications of 10^5 in this run"}),
        },
    }


def _git_commit() -> str | None:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=HERE, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], cwd=HERE, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return f"{head}{' (uncommitted changes)' if dirty else ''}"


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    return {
        "date_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "cores": available_cores(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "numpy": np.__version__,
        "simpy": simpy.__version__,
        "plgsim": simulator.__version__,
        "git_commit": _git_commit(),
        # The machine is shared: the load when the run began and ended says how quiet it was.
        "load_average_start": [round(x, 2) for x in os.getloadavg()],
    }


# --- command line ----------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print the JSON object (default: a short table)")
    parser.add_argument("--out", type=Path, help="also write the JSON object to this file")
    parser.add_argument("--quick", action="store_true", help="smoke version, under a minute")
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS), help="what to measure")
    parser.add_argument("--engines", nargs="+", choices=ENGINES, default=list(ENGINES), help="engines to time")
    parser.add_argument("--sizes", nargs="+", choices=list(SCENARIOS), help="scaling sizes (default: all)")
    parser.add_argument(
        "--skip-slow-1m",
        action="store_true",
        help="time only the fast engine at 10^6 (the naive model and the SimPy engine take about a minute)",
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs per measurement, fastest kept")
    parser.add_argument("--reps", type=int, default=None, help="replications for the pool figure (default 100)")
    parser.add_argument("--workers", type=int, default=2, help="pool size for the replications figure")
    parser.add_argument("--seed", type=int, default=7, help="seed of every single run and of the replications")
    parser.add_argument("--child-memory", choices=list(SCENARIOS), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Run the selected parts and gather the report."""
    sizes = args.sizes or (["10k"] if args.quick else list(SCENARIOS))
    report: dict[str, Any] = {
        "benchmark": "engines",
        "mode": "quick" if args.quick else "full",
        "machine": machine(),
        "seed": args.seed,
        "units": {
            "users_per_second": "simulated users (every signup in the horizon) per second of wall time",
            "ratios": "users per second of the engine / users per second of the naive model, same scenario",
        },
        "targets": TARGETS,
    }
    fast_missing = fast_engine_status()
    if fast_missing is not None:
        report["fast_engine"] = {"unavailable": fast_missing}
    # Memory first: nothing else in this run has started a child process yet.
    if "memory" in args.parts:
        report["memory"] = measure_memory("100k" if args.quick else "1m", args.seed)
    if "scaling" in args.parts:
        started = time.perf_counter()
        table = measure_scaling(args.engines, sizes, args.seed, args.repeat, args.skip_slow_1m)
        report["scaling"] = table
        report["ratios"], report["ratios_by_size"] = ratios_from(table)
        report["scaling_wall_seconds"] = round(time.perf_counter() - started, 1)
    if "replications" in args.parts:
        reps = args.reps or (10 if args.quick else 100)
        report["replications"] = measure_replications("10k" if args.quick else "100k", reps, args.workers, args.seed)
    report["assessment"] = assess(report, args.quick)
    report["machine"]["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    return report


def table_text(report: dict[str, Any]) -> str:
    """A few lines for a person; --json has everything."""
    where = report["machine"]
    lines = [f"{where['date_utc']}, {where['cores']} cores, Python {where['python']}"]
    for size, row in report.get("scaling", {}).items():
        cells = []
        for engine in ENGINES:
            cell = row.get(engine)
            if isinstance(cell, dict) and "users_per_second" in cell:
                cells.append(f"{engine} {cell['simulated_users']:,} users {cell['wall_seconds']:.2f} s")
            elif isinstance(cell, dict):
                cells.append(f"{engine} {next(iter(cell.values()))}")
        lines.append(f"{size:>5}: " + "; ".join(cells))
    for key, target in report.get("assessment", {}).items():
        value = next((target[k] for k in ("value", "value_bytes", "value_seconds") if k in target), None)
        lines.append(f"{key}: {value} met={target['met']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    args = parse_args(argv)
    if args.child_memory:
        child_memory(args.child_memory, args.seed)
        return
    report = measure(args)
    text = json.dumps(report, indent=2)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n", encoding="utf-8")
    print(text if args.json else table_text(report))


if __name__ == "__main__":
    main()
