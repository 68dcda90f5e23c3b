"""The fast engine against the SimPy reference at full size: every bundled scenario over its
own horizon (36 months), many independent replications per engine, compared by the procedure
of tests/test_equivalence.py (its `compare_arms`: two-sample KS and Welch's t-test on the
defined values of each metric, Fisher's exact test on the share undefined, Bonferroni over
scenarios × metrics × 3 tests at a 1% family level).

CI runs the same procedure on shrunk scenarios (5% of the volume, 18 months) with 50
replications per engine; this is the version with power against small differences (with 200
replications, a standardized difference of 0.49 is detected with 80% power per test). A
full-size replication takes about 10 s with SimPy and 0.1–0.2 s with the fast engine, so the
default, 200 replications per engine of all eight scenarios, is about 20,000 CPU-seconds:
nearly three hours on two cores. Opt-in: not part of the test suite.

Prints one JSON object: per scenario, each engine's wall time and, per metric, n, the number of
replications defining it, both means and standard deviations, the three p-values and
pass/fail; then the family, the per-test level, the smallest standardized difference detected
with 80% power, and `passed`. Exits with 1 if some test rejects.

    python benchmarks/equivalence.py [--reps 200] [--scenarios baseline trial_14d] [--months N]
        [--scale X] [--workers N] [--candidate fast] [--salt TEXT] [--out FILE]

--scale and --months shrink the scenarios the way CI does (e.g. --scale 0.05 --months 18),
for a quick check that the script works; --salt draws fresh seeds (it enters the seed roots);
--candidate fast-churn+10% or fast-activation-10% compares SimPy with the fast engine on a
perturbed scenario instead, to see what a given number of replications can detect.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from simulator.cores import available_cores
from simulator.runner.executors import LocalExecutor
from simulator.scenario.loading import load_scenario
from simulator.scenario.models import Scenario

ROOT = Path(__file__).resolve().parent.parent
# The procedure lives with the tests, so CI and this benchmark cannot drift apart.
sys.path.insert(0, str(ROOT / "tests"))
from test_equivalence import (  # noqa: E402
    FAMILY_LEVEL,
    FAST,
    FAST_LESS_ACTIVATION,
    FAST_MORE_CHURN,
    METRICS,
    REFERENCE,
    SCENARIOS,
    TESTS_PER_METRIC,
    Arm,
    Replications,
    compare_arms,
    detectable_difference,
    shrunk,
)

CANDIDATES: dict[str, Arm] = {
    "fast": FAST,
    "fast-churn+10%": FAST_MORE_CHURN,
    "fast-activation-10%": FAST_LESS_ACTIVATION,
}
"""The arm compared with SimPy: the fast engine, or it on a perturbed scenario (to see the power)."""


def _scenario(path: Path, months: int | None, scale: float) -> Scenario:
    if scale != 1.0:
        full = load_scenario(path)
        return shrunk(path, months=months or full.simulation.months, scale=scale)
    return load_scenario(path, {"simulation.months": months} if months else None)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=200, help="replications per engine and scenario")
    names = [p.stem for p in SCENARIOS]
    parser.add_argument("--scenarios", nargs="+", default=names, choices=names, metavar="NAME", help="subset")
    parser.add_argument("--months", type=int, default=None, help="override the horizon")
    parser.add_argument("--scale", type=float, default=1.0, help="scale every volume (as CI does)")
    parser.add_argument("--workers", type=int, default=available_cores(), help="local worker processes")
    parser.add_argument(
        "--candidate", default="fast", choices=list(CANDIDATES), help="a perturbed arm shows what the runs can detect"
    )
    parser.add_argument("--salt", default="", help="text mixed into the seed roots, for fresh samples")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = parser.parse_args()
    if args.reps < 2:
        parser.error("--reps must be at least 2")

    family_size = len(args.scenarios) * len(METRICS) * TESTS_PER_METRIC
    level = FAMILY_LEVEL / family_size
    report: dict[str, Any] = {
        "benchmark": "equivalence",
        "reps": args.reps,
        "months": args.months,
        "scale": args.scale,
        "workers": args.workers,
        "salt": args.salt,
        "candidate": CANDIDATES[args.candidate].name,
        "family": {
            "scenarios": len(args.scenarios),
            "metrics": list(METRICS),
            "tests": ["ks", "welch", "undefined_share"],
            "size": family_size,
            "level": FAMILY_LEVEL,
            "per_test_level": level,
        },
        "detectable_difference_80pct_power": round(detectable_difference(args.reps, level), 4),
        "scenarios": {},
    }
    start = time.perf_counter()
    passed = True
    with LocalExecutor(args.workers) as pool:
        replications = Replications(pool)
        for name in args.scenarios:
            path = ROOT / "scenarios" / f"{name}.toml"
            scenario = _scenario(path, args.months, args.scale)
            label = f"{name}#{args.salt}" if args.salt else name
            seconds: dict[str, float] = {}
            candidate = CANDIDATES[args.candidate]
            for arm in (REFERENCE, candidate):
                began = time.perf_counter()
                replications.ensemble(arm, scenario, label, args.reps)  # kept for compare_arms
                seconds[arm.name] = round(time.perf_counter() - began, 2)
            comparisons, ref, _ = compare_arms(replications, scenario, label, REFERENCE, candidate, args.reps)
            ok = not any(c.significant(level) for c in comparisons)
            passed &= ok
            report["scenarios"][name] = {
                "months": scenario.simulation.months,
                "simulated_users_mean": float(np.mean([run.simulated_users for run in ref.runs])),
                "seconds": seconds,
                "pass": ok,
                "metrics": {c.metric: c.to_json(level) for c in comparisons},
            }
            print(f"{name}: {'pass' if ok else 'FAIL'} ({seconds})", file=sys.stderr, flush=True)
    report["passed"] = passed
    report["seconds"] = round(time.perf_counter() - start, 2)
    report["python"] = platform.python_version()
    report["machine"] = {"cores": available_cores(), "platform": platform.platform()}
    text = json.dumps(report, indent=2)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n", encoding="utf-8")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
