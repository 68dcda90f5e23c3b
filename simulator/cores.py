"""How many cores this process may use: for sizing pools and deciding on helper threads."""

from __future__ import annotations

import os

_sharing_processes = 1
"""How many pool workers (this process one of them) split the cores this process may run on."""


def available_cores() -> int:
    """Cores this process may run on (respects CPU affinity, e.g. in containers)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def share_cores(processes: int) -> None:
    """Note that this process is one of `processes` pool workers that split the cores."""
    global _sharing_processes
    _sharing_processes = processes


def cores_for_this_process() -> int:
    """The cores this process may keep busy with threads of its own: all it may run on, or
    its share of them as one of several pool workers (see share_cores)."""
    return max(1, available_cores() // _sharing_processes)
