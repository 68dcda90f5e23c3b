"""Replications per second on the local process pool with 1 and 2 workers (and more, if
asked), and the parallel efficiency, for one bundled scenario. Both pool sizes run in the same
process, one after the other, so their ratio is measured in one run.

Prints one JSON object. Opt-in: not part of the test suite.

    python benchmarks/run_replications.py [--scenario baseline.toml] [--reps 8] [--months 36] [--workers 1 2]
        [--engine simpy|fast]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from simulator import LocalExecutor, load_scenario, run_many
from simulator.cores import available_cores

SCENARIOS = Path(__file__).parent.parent / "scenarios"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scenario", default="baseline.toml", help="a file in scenarios/")
    parser.add_argument("--reps", type=int, default=8, help="replications per pool size")
    parser.add_argument("--months", type=int, default=None, help="override the horizon")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="pool sizes to measure")
    parser.add_argument("--engine", choices=("simpy", "fast"), default="simpy", help="engine of every replication")
    args = parser.parse_args()
    overrides = {"simulation.months": args.months} if args.months else None
    scenario = load_scenario(SCENARIOS / args.scenario, overrides)

    runs: dict[str, dict[str, float]] = {}
    samples = []
    for workers in args.workers:
        # The pool's start-up (starting the worker processes) is counted:
        # it is part of what a user waits for.
        start = time.perf_counter()
        with LocalExecutor(workers) as pool:
            ensemble = run_many(scenario, reps=args.reps, executor=pool, engine=args.engine)
        seconds = time.perf_counter() - start
        samples.append(ensemble.kpi_samples["mrr"])
        runs[f"workers_{workers}"] = {
            "workers": workers,
            "seconds": round(seconds, 2),
            "reps_per_second": round(args.reps / seconds, 4),
        }
    base = runs[f"workers_{args.workers[0]}"]
    ratios = {}
    for key, row in runs.items():
        speedup = row["reps_per_second"] / base["reps_per_second"]
        ratios[f"speedup_{key}_vs_{args.workers[0]}"] = round(speedup, 3)
        ratios[f"parallel_efficiency_{key}"] = round(speedup * args.workers[0] / row["workers"], 3)
    print(
        json.dumps(
            {
                "benchmark": "replications",
                "scenario": args.scenario,
                "engine": args.engine,
                "months": scenario.simulation.months,
                "reps": args.reps,
                "cores": available_cores(),
                "cpu_count": os.cpu_count(),
                "python": platform.python_version(),
                "runs": runs,
                "ratios": ratios,
                "identical_results": all(np.array_equal(samples[0], s) for s in samples[1:]),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
