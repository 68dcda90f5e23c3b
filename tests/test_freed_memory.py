"""`keep_freed_memory` raises glibc malloc's thresholds once a process, and only with glibc."""

from __future__ import annotations

import platform
import subprocess
import sys

import simulator.engines.freed_memory as freed_memory

ON_GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"


def test_it_applies_where_malloc_is_glibcs() -> None:
    assert freed_memory.keep_freed_memory() is ON_GLIBC
    assert freed_memory.keep_freed_memory() is ON_GLIBC  # once: the second call only reports


def test_a_freed_block_is_kept_for_the_next_allocation() -> None:
    # In a fresh interpreter: glibc's own statistics (mallinfo2) show a freed 16 MiB block kept
    # in the heap's free memory with the thresholds raised, and given back without.
    probe = (
        "import ctypes, sys\n"
        "import simulator.engines.freed_memory as m\n"
        "class Info(ctypes.Structure):\n"
        "    _fields_ = [(n, ctypes.c_size_t) for n in ('arena', 'ordblks', 'smblks', 'hblks',"
        " 'hblkhd', 'usmblks', 'fsmblks', 'uordblks', 'fordblks', 'keepcost')]\n"
        "libc = ctypes.CDLL('libc.so.6'); libc.mallinfo2.restype = Info\n"
        "if sys.argv[1] == 'keep': m.keep_freed_memory()\n"
        "block = bytearray(16 << 20); del block\n"
        "print(libc.mallinfo2().fordblks >= 16 << 20)\n"
    )
    if not ON_GLIBC:
        assert freed_memory.keep_freed_memory() is False
        return
    kept = [
        subprocess.run([sys.executable, "-c", probe, how], capture_output=True, text=True, check=True).stdout.strip()
        for how in ("keep", "default")
    ]
    assert kept == ["True", "False"]
