"""The fast engine's large arrays are advised to use huge pages (Linux only)."""

from __future__ import annotations

import mmap
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from simulator.engines.huge_pages import MIN_BYTES, advise_huge_pages

THP_SETTING = Path("/sys/kernel/mm/transparent_hugepage/enabled")
pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or not THP_SETTING.exists() or "[never]" in THP_SETTING.read_text(),
    reason="needs Linux with transparent huge pages available (madvise(MADV_HUGEPAGE))",
)

LARGE_BYTES = 16 * MIN_BYTES
"""64 MiB: above glibc's largest threshold for giving an allocation a mapping of its own."""


def advised(address: int) -> bool:
    """Whether the memory mapping holding `address` carries the huge-page advice ("hg")."""
    in_range = False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        head = line.split()[0]
        if "-" in head and ":" not in head:
            start, end = (int(x, 16) for x in head.split("-"))
            in_range = start <= address < end
        elif in_range and head == "VmFlags:":
            return "hg" in line.split()[1:]
    raise AssertionError(f"no mapping holds {address:#x}")


def middle(a: np.ndarray) -> int:
    """An address inside `a` (the advised range leaves out partial pages at the ends)."""
    return int(a.ctypes.data) + a.nbytes // 2


def test_views_are_left_alone() -> None:
    memory = mmap.mmap(-1, LARGE_BYTES)
    every_other = np.frombuffer(memory, dtype=np.float64)[::2]  # its bytes are not one range
    advise_huge_pages(every_other)
    assert not advised(middle(every_other))
    del every_other
    memory.close()


def test_the_advice_marks_the_memory_under_an_array() -> None:
    memory = mmap.mmap(-1, LARGE_BYTES)  # a mapping of its own, never advised
    a = np.frombuffer(memory, dtype=np.float64)
    assert not advised(middle(a))  # the control
    advise_huge_pages(a)
    assert advised(middle(a))
    del a
    memory.close()


def test_the_state_arrays_the_kernel_allocates_and_grows_are_advised() -> None:
    # In a fresh interpreter: here, memory freed by earlier tests' advised arrays may be
    # reused, which would make any array look advised.
    script = textwrap.dedent(
        f"""
        import numpy as np
        from numba import njit
        from simulator.engines import fast_kernel as kernel
        from tests.test_huge_pages import advised, middle

        @njit
        def plain(n):
            return np.empty(n)

        rows = {LARGE_BYTES} // (8 * kernel.AF_COLUMNS) + 1
        control = plain({LARGE_BYTES} // 8)
        state = dict(zip(kernel.STATE_FIELDS, kernel.arrays(kernel.new_state(36.0, rows, 1)), strict=True))
        grown = kernel._grown(np.ones((4, 3)), {LARGE_BYTES} // 24 + 1)
        print(advised(middle(control)), advised(middle(state["af"])), advised(middle(grown)), grown[:4].sum())
        """
    )
    root = Path(__file__).parent.parent
    out = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "True", "True", "12.0"], out.stderr
