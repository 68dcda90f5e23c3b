"""A SimPy environment that keeps its pending events in a two-level calendar.

NOTE: for performance reasons. SimPy keeps every pending event in one heap of (time, priority,
id, event) tuples. The SimPy engine has up to 126,000 pending at 10^6 signups, most of them
months ahead (a free account's exit, a paying account's renewal), and each pop walked about
17 levels of tuples scattered through memory: a fifth of the engine's time. Here only the
events of the current slot (1/32 of a time unit, a day in the engine's months) are in the heap;
later ones wait in a list per slot, appended in constant time, and enter the heap when their
slot comes. Events are processed in exactly SimPy's order (time, then priority, then the order
in which they were scheduled), so a run gives the same results as on `simpy.Environment`.

It also schedules timed calls (`call_later`): a function called at a time, in the place a
timeout with that function as its only callback would have, without the timeout.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from heapq import heapify, heappop, heappush
from typing import Any

import simpy
from simpy.core import EmptySchedule, SimTime, StopSimulation
from simpy.events import NORMAL, Event, EventPriority

_Entry = tuple[Any, ...]
"""(time, priority, id, event) for an event, (time, priority, id, None, action, args) for a call:
ordered by their first three items, which are distinct."""

SLOTS_PER_UNIT = 32
"""Calendar slots per unit of simulated time. A power of two, so that the slot of a time (its
product with this, rounded down) and a slot's bounds are exact in floating point."""

_LAST_SLOT = 2**53
"""The slot of every time from `_LAST_TIME` on (infinity among them): below it, a slot and the
next one are exact as floats, so their bounds are too."""
_LAST_TIME = _LAST_SLOT / SLOTS_PER_UNIT


class CalendarEnvironment(simpy.Environment):
    """`simpy.Environment` with its pending events in a calendar instead of a single heap."""

    def __init__(self, initial_time: SimTime = 0) -> None:
        super().__init__(initial_time)
        self._near: list[_Entry] = []  # a heap: the events before `_near_until`
        self._near_until: float = math.floor(initial_time * SLOTS_PER_UNIT) / SLOTS_PER_UNIT
        self._later: dict[int, list[_Entry]] = {}  # slot -> its events, in scheduling order
        self._later_slots: list[int] = []  # a heap of the keys of `_later`
        self._in_run = False

    def schedule(self, event: Event, priority: EventPriority = NORMAL, delay: SimTime = 0) -> None:
        """Schedule `event` with `priority` after `delay`."""
        at = self._now + delay
        self._file(at, (at, priority, next(self._eid), event))

    def call_later(self, delay: SimTime, action: Callable[..., object], *args: Any) -> None:
        """Call `action(*args)` after `delay`: when, and in the order in which, a timeout made now
        with `action` as its only callback would have been processed.

        NOTE: for performance reasons. Without an event object, its callback list and a call
        through the event, a timed call costs less than a timeout, and the SimPy engine makes
        one or two for most users. The action must not stop the run (raise `StopSimulation`)."""
        if delay < 0:
            raise ValueError(f"Negative delay {delay}")
        at = self._now + delay
        self._file(at, (at, NORMAL, next(self._eid), None, action, args))

    def _file(self, at: SimTime, entry: _Entry) -> None:
        if at < self._near_until:
            heappush(self._near, entry)
            return
        slot = math.floor(at * SLOTS_PER_UNIT) if at < _LAST_TIME else _LAST_SLOT
        try:
            self._later[slot].append(entry)
        except KeyError:
            self._later[slot] = [entry]
            heappush(self._later_slots, slot)

    def _next_slot(self) -> None:
        """Move the earliest waiting slot's events into the (empty) heap."""
        if not self._later_slots:
            raise EmptySchedule
        slot = heappop(self._later_slots)
        self._near = self._later.pop(slot)
        heapify(self._near)
        self._near_until = (slot + 1) / SLOTS_PER_UNIT if slot < _LAST_SLOT else math.inf

    def peek(self) -> SimTime:
        """The time of the next event (infinity if there is none)."""
        if self._near:
            return self._near[0][0]
        if self._later_slots:
            return min(self._later[self._later_slots[0]])[0]
        return math.inf

    def run(self, until: SimTime | Event | None = None) -> Any:
        """Process events until `until` (as `simpy.Environment.run`)."""
        self._in_run = True
        try:
            return super().run(until)
        finally:
            self._in_run = False

    def step(self) -> None:
        """Process the next event (as `simpy.Environment.step`); called by `run`, every event
        until the run stops.

        NOTE: for performance reasons. SimPy's `run` calls `step` until it raises the end of
        the run (`StopSimulation` or `EmptySchedule`); looping here instead saves a call per
        event.
        """
        once = not self._in_run
        self._in_run = False  # a step called by a callback meanwhile processes one event
        try:
            while True:
                near = self._near
                if not near:
                    self._next_slot()
                    near = self._near
                entry = heappop(near)
                self._now = entry[0]
                event = entry[3]
                if event is None:  # a timed call
                    entry[4](*entry[5])
                else:
                    self._trigger(event)
                if once:
                    return
        finally:
            self._in_run = not once

    def _trigger(self, event: Event) -> None:
        """Call the callbacks of `event`, which has just been taken from the calendar."""
        callbacks, event.callbacks = event.callbacks, None  # type: ignore[assignment]
        try:
            for callback in callbacks:
                callback(event)
        except StopSimulation:
            # The run stops inside this event: its other callbacks run when the next run
            # starts, before anything else.
            event.callbacks = callbacks[callbacks.index(callback) + 1 :]
            self.schedule(event, EventPriority(-1))
            raise
        if not event._ok and not hasattr(event, "_defused"):
            # A failed event nobody handled ends the run, as in SimPy.
            failure: Any = event._value
            error = type(failure)(*failure.args)
            error.__cause__ = failure
            raise error

    def discard_pending(self) -> None:
        """Drop every pending event, unlinked from the callbacks (and so the processes)
        waiting on it."""
        for entries in (self._near, *self._later.values()):
            for entry in entries:
                if entry[3] is not None:  # an event, not a timed call
                    entry[3].callbacks = None
        self._near = []
        self._later.clear()
        self._later_slots.clear()
