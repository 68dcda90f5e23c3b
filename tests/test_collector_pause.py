"""The SimPy engine runs with the cyclic garbage collector paused and leaves it as it was."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest
import simpy

from simulator import load_scenario
from simulator.engines.collector_pause import cyclic_collector_paused
from simulator.engines.simpy_engine import run_simpy

TINY = Path(__file__).parent / "data" / "tiny.toml"


@pytest.fixture(autouse=True)
def collector_on() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


def test_a_run_pauses_the_collector_and_turns_it_back_on() -> None:
    seen: list[bool] = []
    ledger = run_simpy(load_scenario(TINY), seed=1, on_progress=lambda _: seen.append(gc.isenabled()))
    assert ledger.users > 0
    assert seen and not any(seen)
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off() -> None:
    gc.disable()
    run_simpy(load_scenario(TINY), seed=1)
    assert not gc.isenabled()


def test_a_failed_run_turns_it_back_on() -> None:
    def stop(_: float) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_simpy(load_scenario(TINY), seed=1, on_progress=stop)
    assert gc.isenabled()


def test_overlapping_runs_share_one_pause() -> None:
    # Two runs on two threads, the first finishing while the second still runs: the collector
    # must stay off until the second ends, and come back on then.
    first, second = cyclic_collector_paused(), cyclic_collector_paused()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert not gc.isenabled()
    second.__exit__(None, None, None)
    assert gc.isenabled()


def test_a_run_leaves_no_cyclic_garbage() -> None:
    # Processes still waiting at the horizon and their events referred to each other; the
    # engine unlinks them, so reference counting frees them with the run.
    gc.collect()
    gc.disable()
    try:
        run_simpy(load_scenario(TINY), seed=1)
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        leftovers = [o for o in gc.garbage if isinstance(o, (simpy.Process, simpy.Timeout))]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert leftovers == []
