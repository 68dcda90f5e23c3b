"""Wall time and simulated users of every bundled scenario with the SimPy engine (or, with
--engine fast, the fast engine).

Prints one JSON object. Opt-in: not part of the test suite, because these machines are shared
and a wall-clock limit in a test would measure the neighbours.

    python benchmarks/run_scenarios.py [--repeat N] [--months N] [--engine simpy|fast]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import tracemalloc
from pathlib import Path
from typing import Any

from simulator import load_scenario, run

SCENARIOS = sorted((Path(__file__).parent.parent / "scenarios").glob("*.toml"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=1, help="runs per scenario; the fastest is kept")
    parser.add_argument("--months", type=int, default=None, help="override the horizon")
    parser.add_argument("--memory", action="store_true", help="also trace peak Python memory (slower)")
    # Explicit: the scenarios' own simulation.engine default is not what the recorded table measured.
    parser.add_argument("--engine", choices=("simpy", "fast"), default="simpy", help="engine to time")
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    for path in SCENARIOS:
        overrides = {"simulation.months": args.months} if args.months else None
        scenario = load_scenario(path, overrides)
        best = float("inf")
        for _ in range(args.repeat):
            start = time.perf_counter()
            result = run(scenario, engine=args.engine)
            best = min(best, time.perf_counter() - start)
        row = {
            "scenario": path.name,
            "months": scenario.simulation.months,
            "simulated_users": result.ledger.users,
            "accounts": len(result.ledger.account_owner),
            "wall_seconds": round(best, 3),
            "users_per_second": round(result.ledger.users / best),
        }
        if args.memory:
            tracemalloc.start()
            run(scenario, engine=args.engine)
            row["peak_traced_mib"] = round(tracemalloc.get_traced_memory()[1] / 2**20, 1)
            tracemalloc.stop()
        rows.append(row)
    total_users = sum(r["simulated_users"] for r in rows)
    total_time = sum(r["wall_seconds"] for r in rows)
    print(
        json.dumps(
            {
                "engine": args.engine,
                "cores": os.cpu_count(),
                "python": platform.python_version(),
                "scenarios": rows,
                "totals": {
                    "simulated_users": total_users,
                    "wall_seconds": round(total_time, 2),
                    "users_per_second": round(total_users / total_time),
                },
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
