"""Pausing CPython's cyclic garbage collector while the SimPy engine runs.

NOTE: for performance reasons. The SimPy engine frees its objects by reference counting: over
a run of 10^6 signups the cyclic collector ran 2,181 times and found 735 objects, yet it took
28 s of the run's 67 s, because each pass walks the engine's live processes, accounts and
events (hundreds of thousands at a time). Paused, the same run took 37 s. The pause also
covers closing the ledger; by its end the run has unlinked the processes still waiting at the
horizon from their events and the ledger writer has handed its records over, so the first
collection after it finds little left to walk.

The collector's switch belongs to the process, so overlapping runs (threads) share one pause:
the first to start turns the collector off, the last to finish turns it back on, and only if
it was on when the first started.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_runs_inside = 0
_was_enabled = False


@contextmanager
def cyclic_collector_paused() -> Iterator[None]:
    """Run the body with the cyclic garbage collector off, then leave it as it was."""
    global _runs_inside, _was_enabled
    with _lock:
        if _runs_inside == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _runs_inside += 1
    try:
        yield
    finally:
        with _lock:
            _runs_inside -= 1
            if _runs_inside == 0 and _was_enabled:
                gc.enable()
