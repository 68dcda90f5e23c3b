"""`prefetch`: compiled code asks the processor to bring an array element into its caches.

NOTE: for performance reasons. In a run of a million users, most of the fast kernel's time
went into waiting for the rows of users and accounts that an event reads (a `perf` profile
placed a fifth of the event loop's samples on one load: a leaving account's member count),
as those rows were last touched weeks of simulated time earlier and are no longer cached.
The calendar knows the next events in advance, so the loop asks for their rows a few events
ahead. A prefetch is only a hint: it changes no result, and an address it cannot fetch is
ignored rather than faulting.

numba's on-disk cache of the kernel does not see this file: after editing it, clear
`simulator/engines/__pycache__`.
"""

from __future__ import annotations

from typing import Any

import numba.core.cgutils
import numba.core.extending
from llvmlite import ir
from numba.core import types

# numba's extension API is untyped: these names stand for it.
cgutils: Any = numba.core.cgutils
extending: Any = numba.core.extending

READ, KEEP_IN_ALL_LEVELS, DATA = 0, 3, 1
"""`llvm.prefetch`'s arguments: for reading, with the most temporal locality, into the data cache."""


def _prefetch(typingctx: Any, array: Any, flat_index: Any) -> Any:
    if not isinstance(array, types.Array) or not isinstance(flat_index, types.Integer):
        return None

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        data = context.make_array(signature.args[0])(context, builder, args[0]).data
        index = context.cast(builder, args[1], signature.args[1], types.intp)
        address = builder.bitcast(builder.gep(data, [index]), ir.IntType(8).as_pointer())
        i32 = ir.IntType(32)
        # Declared by name: the intrinsic takes an opaque pointer (`.p0`) in numba's LLVM.
        hint_type = ir.FunctionType(ir.VoidType(), [address.type, i32, i32, i32])
        hint = cgutils.get_or_insert_function(builder.module, hint_type, "llvm.prefetch.p0")
        builder.call(hint, [address, i32(READ), i32(KEEP_IN_ALL_LEVELS), i32(DATA)])
        return context.get_dummy_value()

    return types.none(array, flat_index), codegen


prefetch = extending.intrinsic(_prefetch)
"""prefetch(array, flat_index): fetch the element at `flat_index` of the array's memory (its
flat, C-order position) into the caches. Compiled code only."""
