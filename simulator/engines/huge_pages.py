"""Asking Linux to back the fast engine's large arrays with huge pages, from compiled code.

NOTE: for performance reasons. A run of a million users writes some 600 MiB of state at
scattered rows. With 4 KiB pages each first write to a page is a page fault (about 150,000 a
run) and most rows cost a TLB miss; transparent huge pages (2 MiB) cut both. numpy asks for
them on its own large arrays (`madvise(MADV_HUGEPAGE)`), but arrays allocated in numba-compiled
code come from plain `malloc`, so `advise_huge_pages` asks for them before an array is first
written. It is advice: where the system's setting is "never", or on other systems (where it
does nothing), results are the same, only slower.

numba's on-disk cache of `fast_kernel` is keyed by that file alone: after editing this one,
clear `simulator/engines/__pycache__`, or the kernel keeps the compiled code of the old one.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from numba import njit, types

MADV_HUGEPAGE = 14
"""Linux's `madvise` advice asking for transparent huge pages."""
MIN_BYTES = 1 << 22
"""Smaller arrays are left alone (numpy's threshold): they span too few huge pages to gain."""
PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
"""`madvise` takes whole pages: the advised range starts and ends on page boundaries."""

if sys.platform.startswith("linux"):
    _int: Any = types.intc  # numba's stubs type its types' calls too narrowly
    _madvise: Any = types.ExternalFunction("madvise", _int(types.voidptr, types.uintp, types.intc))

    @njit(cache=True)
    def advise_huge_pages(a: Any) -> None:
        """Ask for huge pages under array `a` (call it before writing `a`)."""
        if a.nbytes < MIN_BYTES or not a.flags.c_contiguous:
            return  # too small to gain; or a view, whose bytes are not one range
        start = (a.ctypes.data + PAGE - 1) & ~(PAGE - 1)
        end = (a.ctypes.data + a.nbytes) & ~(PAGE - 1)
        _madvise(start, end - start, MADV_HUGEPAGE)  # a refusal (error) leaves plain pages

else:

    @njit(cache=True)
    def advise_huge_pages(a: Any) -> None:
        """Nothing to ask for outside Linux."""
