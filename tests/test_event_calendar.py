"""The calendar environment processes events in exactly SimPy's order, and the SimPy engine gives
the same ledger on it as on SimPy's own environment."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import simpy

from simulator import load_scenario
from simulator.engines.event_calendar import SLOTS_PER_UNIT, CalendarEnvironment
from simulator.engines.simpy_engine import SimpyEngine
from simulator.ledger import Ledger

Trace = list[tuple[float, str]]
MakeEnvironment = Callable[..., simpy.Environment]


def _call_later(env: simpy.Environment, delay: float, action: Callable[..., object], *args: Any) -> None:
    """A timed call on the calendar; on SimPy's environment, the timeout it stands for."""
    if isinstance(env, CalendarEnvironment):
        env.call_later(delay, action, *args)
    else:
        env.timeout(delay).callbacks.append(lambda _: action(*args))


def _busy_world(make_env: MakeEnvironment, seed: int) -> Trace:
    """Processes, callbacks and timed calls with many ties: delays from a small set (0 among
    them), delays spanning many calendar slots, processes started from callbacks (urgent
    events), shared events succeeded from processes, and runs stopped at times that events
    also fall on."""
    env = make_env()
    rng = np.random.default_rng(seed)
    trace: Trace = []
    delays = [0.0, 1 / SLOTS_PER_UNIT, 0.25, 0.5, 1.0, 3.0, 7.5]
    shared = env.event()

    def worker(name: str) -> Generator[simpy.Event, Any, None]:
        for step in range(int(rng.integers(1, 8))):
            delay = float(rng.choice(delays)) if rng.random() < 0.7 else float(rng.exponential(2.0))
            yield env.timeout(delay)
            trace.append((env.now, f"{name}.{step}"))
            if rng.random() < 0.1:
                env.process(worker(f"{name}/{step}"))
            if rng.random() < 0.1 and not shared.triggered:
                shared.succeed()
            if rng.random() < 0.3:
                _call_later(env, float(rng.choice(delays)), call, f"{name}.{step} call", 2)
        if rng.random() < 0.3:
            yield shared
            trace.append((env.now, f"{name} saw shared"))

    def call(name: str, depth: int) -> None:
        trace.append((env.now, name))
        if depth > 0 and rng.random() < 0.5:
            _call_later(env, float(rng.choice(delays)), call, f"{name}+", depth - 1)
        if rng.random() < 0.05:
            env.process(worker(f"{name}*"))

    def later(name: str) -> Callable[[simpy.Event], None]:
        def note(_: simpy.Event) -> None:
            trace.append((env.now, name))
            if rng.random() < 0.5:
                env.process(worker(f"{name}*"))

        return note

    for i in range(12):
        env.process(worker(f"w{i}"))
        env.timeout(float(rng.choice(delays))).callbacks.append(later(f"cb{i}"))
    for until in (0.5, 1.0, 2.0, 3.0, 10.0):
        env.run(until=until)
        trace.append((env.now, f"stop {until}"))
    trace.append((env.peek(), "peek"))
    env.run()
    return trace


@pytest.mark.parametrize("seed", range(20))
def test_same_order_as_simpy(seed: int) -> None:
    expected = _busy_world(simpy.Environment, seed)
    assert _busy_world(CalendarEnvironment, seed) == expected
    assert len(expected) > 40  # the world did something


def _far_times(make_env: MakeEnvironment) -> list[float]:
    env = make_env()
    seen: list[float] = []
    for delay in (math.inf, 2.0**70, 2.0**40, 5.0):
        env.timeout(delay).callbacks.append(lambda _: seen.append(env.now))
    seen.append(env.peek())
    env.run()
    return seen


def test_times_beyond_the_calendar() -> None:
    expected = [5.0, 5.0, 2.0**40, 2.0**70, math.inf]
    assert _far_times(simpy.Environment) == _far_times(CalendarEnvironment) == expected


def _stopped_inside_an_event(make_env: MakeEnvironment) -> list[str]:
    env = make_env()
    trace: list[str] = []
    until = env.timeout(2.0)

    def waiter() -> Generator[simpy.Event, Any, None]:
        yield env.timeout(1.0)
        yield until  # registered after the run's own stop callback
        trace.append("waiter resumed")

    env.process(waiter())
    env.timeout(2.0).callbacks.append(lambda _: trace.append("same time, scheduled later"))
    env.run(until=until)
    trace.append("stopped")
    env.run()
    return trace


def test_stop_inside_an_event_keeps_its_other_callbacks() -> None:
    # A process that waits on the event a run stops at is resumed first when the next run starts.
    expected = ["stopped", "waiter resumed", "same time, scheduled later"]
    assert _stopped_inside_an_event(simpy.Environment) == _stopped_inside_an_event(CalendarEnvironment) == expected


def test_a_failed_event_nobody_handles_ends_the_run() -> None:
    env = CalendarEnvironment()
    env.event().fail(ValueError("lost"))
    with pytest.raises(ValueError, match="lost"):
        env.run()


def test_an_empty_calendar() -> None:
    env = CalendarEnvironment()
    assert env.peek() == math.inf
    env.run()
    with pytest.raises(RuntimeError):
        env.run(until=env.event())


def test_discard_pending_unlinks_waiting_processes() -> None:
    env = CalendarEnvironment()

    def sleeper() -> Generator[simpy.Event, Any, None]:
        yield env.timeout(100.0)

    near, far = env.timeout(0.0), env.timeout(50.0)
    process = env.process(sleeper())
    calls: list[str] = []
    env.call_later(0.5, calls.append, "before")
    env.call_later(20.0, calls.append, "after")
    env.run(until=1.0)
    env.discard_pending()
    assert env.peek() == math.inf
    assert far.callbacks is None and process.target.callbacks is None
    assert near.processed
    assert calls == ["before"]


def _before_zero(make_env: MakeEnvironment) -> Trace:
    # Slots below zero: a time's slot is rounded down, not towards zero.
    env = make_env(-1)
    trace: Trace = []

    def note(name: str) -> Callable[[simpy.Event], None]:
        return lambda _: trace.append((env.now, name))

    def second(_: simpy.Event) -> None:
        trace.append((env.now, "second"))
        env.timeout(0.045).callbacks.append(note("third"))
        trace.append((env.peek(), "peek"))

    env.timeout(0.99).callbacks.append(note("fourth"))
    env.timeout(0.95).callbacks.append(second)
    env.run()
    return trace


def test_times_below_zero() -> None:
    assert _before_zero(CalendarEnvironment) == _before_zero(simpy.Environment)


def _at_a_huge_time(make_env: MakeEnvironment, at: float) -> list[str]:
    # An urgent event (a process's start) at the current time goes before normal ones then.
    env = make_env()
    trace: list[str] = []

    def started() -> Generator[simpy.Event, Any, None]:
        trace.append("process started")
        yield env.timeout(0)

    def first(_: simpy.Event) -> None:
        trace.append("first")
        env.process(started())

    env.timeout(at).callbacks.append(first)
    env.timeout(at).callbacks.append(lambda _: trace.append("second"))
    env.run()
    return trace


@pytest.mark.parametrize("at", [2.0**40, 2.0**48 - 1 / SLOTS_PER_UNIT, 2.0**50, 2.0**56])
def test_priority_at_huge_times(at: float) -> None:
    assert _at_a_huge_time(CalendarEnvironment, at) == _at_a_huge_time(simpy.Environment, at)


def _stepped_from_a_callback(make_env: MakeEnvironment) -> list[str]:
    env = make_env()
    trace: list[str] = []

    def first(_: simpy.Event) -> None:
        trace.append("first")
        env.step()  # processes the next event only
        trace.append("back in first")

    env.timeout(1.0).callbacks.append(first)
    for name in ("second", "third"):
        env.timeout(2.0).callbacks.append(lambda _, name=name: trace.append(name))
    env.run()
    return trace


def test_a_step_inside_a_run_processes_one_event() -> None:
    expected = ["first", "second", "back in first", "third"]
    assert _stepped_from_a_callback(CalendarEnvironment) == _stepped_from_a_callback(simpy.Environment) == expected


def test_a_timed_call_cannot_be_in_the_past() -> None:
    with pytest.raises(ValueError, match="Negative delay"):
        CalendarEnvironment().call_later(-1.0, print)


class _SimPyOwnEnvironment(simpy.Environment):
    """SimPy's environment, with the calendar's two extra methods done the plain way."""

    def call_later(self, delay: float, action: Callable[..., object], *args: Any) -> None:
        self.timeout(delay).callbacks.append(lambda _: action(*args))

    def discard_pending(self) -> None:
        for *_, event in self._queue:
            event.callbacks = None
        self._queue.clear()


def _ledger_fields(ledger: Ledger) -> dict[str, Any]:
    return {field.name: getattr(ledger, field.name) for field in dataclasses.fields(ledger)}


@pytest.mark.parametrize(
    ("seed", "overrides"),
    [
        (1, {}),
        (2, {"monetization.model": "paid_only"}),
        (3, {"monetization.model": "reverse_trial"}),
        (4, {"monetization.model": "free_trial", "simulation.months": 13}),
    ],
)
def test_the_engine_gives_the_same_ledger_on_simpys_own_environment(seed: int, overrides: dict[str, Any]) -> None:
    scenario = load_scenario(Path(__file__).parent / "data" / "tiny.toml", overrides)
    on_calendar = SimpyEngine(scenario, seed=seed).run()
    engine = SimpyEngine(scenario, seed=seed)
    engine.env = _SimPyOwnEnvironment()  # type: ignore[assignment]
    on_simpy = engine.run()
    assert on_calendar.users > 100
    for name, value in _ledger_fields(on_calendar).items():
        other = _ledger_fields(on_simpy)[name]
        if isinstance(value, np.ndarray):
            assert np.array_equal(value, other, equal_nan=value.dtype.kind == "f"), name
        else:
            assert value == other, name
