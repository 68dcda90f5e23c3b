"""`compiled` compiles a function once per argument types, where numba's njit compiles it once
per constant that compiled code passes it."""

from __future__ import annotations

from numba import njit, types
from numba.core.dispatcher import Dispatcher

from simulator.engines import fast_kernel as kernel
from simulator.engines.compiled import _ByTypeDispatcher, compiled

ROW_A, ROW_B = 3, 5


def test_constants_passed_from_compiled_code_share_one_compilation() -> None:
    # Defined here, not cached: each test run compiles them afresh and sees the signatures.
    @compiled(cache=False)
    def by_type(x: int) -> int:
        return x * 2

    @compiled(cache=False)
    def calls_by_type() -> int:
        return by_type(ROW_A) + by_type(ROW_B) + by_type(-1)

    @njit
    def by_value(x: int) -> int:
        return x * 2

    @njit
    def calls_by_value() -> int:
        return by_value(ROW_A) + by_value(ROW_B) + by_value(-1)

    assert calls_by_type() == calls_by_value() == 2 * (ROW_A + ROW_B - 1)
    assert by_type.signatures == [(types.int64,)]
    # The control: plain njit compiles the callee once per constant (Literal[int] types).
    assert len(by_value.signatures) == 3


def test_every_compiled_function_of_the_kernel_is_typed_by_argument_types() -> None:
    dispatchers = {
        name: f
        for name, f in vars(kernel).items()
        if isinstance(f, Dispatcher) and f.py_func.__module__ == kernel.__name__  # not imported ones
    }
    assert "_draw" in dispatchers and "advance" in dispatchers
    plain = sorted(name for name, f in dispatchers.items() if not isinstance(f, _ByTypeDispatcher))
    assert plain == [], f"use simulator.engines.compiled.compiled, not njit, for {plain}"
