"""What a SimPy event costs with no model attached: the floor under any SimPy engine.

Users arrive at exponential gaps; each is a process that only yields `timeout(1)` a few times
(5 by default), so every event is SimPy's own work: scheduling, the heap, resuming a
generator. Dividing a model's cost per user by this floor times its events per user shows how
much of its time any SimPy implementation of that model must spend.

    python benchmarks/simpy_floor.py [--users N] [--timeouts K] [--seed S]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Generator
from typing import Any

import numpy as np
import simpy

Process = Generator[simpy.Event, Any, None]


def _user(env: simpy.Environment, timeouts: int, events: list[int]) -> Process:
    for _ in range(timeouts):
        events[0] += 1
        yield env.timeout(1.0)


def _arrivals(env: simpy.Environment, gaps: np.ndarray, timeouts: int, events: list[int]) -> Process:
    for gap in gaps:
        events[0] += 2  # the arrival's timeout and the user's process start
        yield env.timeout(float(gap))
        env.process(_user(env, timeouts, events))


def measure(users: int, timeouts: int, seed: int) -> dict[str, Any]:
    """CPU seconds to run `users` bare processes of `timeouts` timeouts each."""
    env = simpy.Environment()
    gaps = np.random.default_rng(seed).exponential(36.0 / users, users)
    # Events scheduled, counted as they are (a process's end is not an event anyone waits
    # for, so it is not counted); the count costs a few nanoseconds against microseconds.
    counted = [0]
    env.process(_arrivals(env, gaps, timeouts, counted))
    start = time.process_time()
    env.run()
    seconds = time.process_time() - start
    events = counted[0]
    return {
        "benchmark": "simpy_floor",
        "simpy": simpy.__version__,
        "users": users,
        "timeouts_per_user": timeouts,
        "events": events,
        "cpu_seconds": round(seconds, 3),
        "microseconds_per_event": round(seconds / events * 1e6, 2),
        "microseconds_per_user": round(seconds / users * 1e6, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--timeouts", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    print(json.dumps(measure(args.users, args.timeouts, args.seed), indent=2))


if __name__ == "__main__":
    main()
