"""`compiled`: numba's `njit(cache=True)`, compiled once per argument types, not per constant.

NOTE: for compile time. When compiled code calls a jitted function with a constant (a module
constant such as a row of random numbers, an event kind, -1 for "none"), numba types that
argument as a literal and compiles the callee once for each constant value: the fast kernel's
calls of `_draw` with seventeen different rows made eighteen copies of it, and `_signup`,
`_set_state` and others were compiled several times over. Typing such calls by their arguments'
types alone compiles each function once (66 compiled functions instead of 102 when measured),
and the first run after installing compiles in about a fifth less time. LLVM still folds the
constants where it inlines a call, and the kernel's results did not change (ledgers
bit-identical).

A function that needs an argument's value at compile time (numba's `literally`) must not use it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

from numba.core import types
from numba.core.registry import CPUDispatcher

F = TypeVar("F", bound=Callable[..., Any])


class _ByTypeDispatcher(CPUDispatcher):
    """A CPU dispatcher that types calls from compiled code by their arguments' types."""

    def get_call_template(self, args: Sequence[Any], kws: Any) -> Any:
        # numba passes keyword arguments as a dict
        return super().get_call_template(
            [types.unliteral(a) for a in args],  # type: ignore[no-untyped-call]
            {name: types.unliteral(a) for name, a in dict(kws).items()},  # type: ignore[no-untyped-call]
        )


def compiled(
    *, inline: str = "never", nogil: bool = False, cache: bool = True, reference_counted: bool = True
) -> Callable[[F], F]:
    """Compile a function in nopython mode, cached on disk, as `njit(cache=True, ...)` does.

    `reference_counted=False` compiles it without numba's reference counting (its private
    `_nrt` option): it may read arrays (of its arguments, or of `array_fields` structs) but not
    create, return or store them, which fails to compile. Called from Python, such a function
    would never release its arguments: call it through one compiled with counting.
    """

    def wrap(fn: F) -> F:
        # Set either way: a function left unset inherits the setting of its first caller.
        options = {"nopython": True, "inline": inline, "nogil": nogil, "boundscheck": None, "_nrt": reference_counted}
        dispatcher = _ByTypeDispatcher(py_func=fn, locals={}, targetoptions=options)
        if cache:
            dispatcher.enable_caching()
        return cast(F, dispatcher)

    return wrap
