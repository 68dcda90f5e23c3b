"""`array_fields`: compiled code without reference counting reads a struct's arrays, may not
replace them, and leaves no memory behind when entered through counted code."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from numba.experimental import structref

from simulator.engines import array_fields
from simulator.engines.compiled import compiled


@array_fields.register
class _PairType(array_fields.ArrayFields):
    pass


class Pair(structref.StructRefProxy):
    pass


structref.define_proxy(Pair, _PairType, ["left", "right"])  # type: ignore[no-untyped-call]


# Not cached: compiled afresh in each test run.
@compiled(cache=False, reference_counted=False)
def _weighted_sum(pair: Any) -> float:
    total = 0.0
    for i in range(pair.left.shape[0]):
        total += pair.left[i] * pair.right[i]
    return total


@compiled(cache=False, reference_counted=False)
def _scale_left(pair: Any, factor: float) -> None:
    left = pair.left
    for i in range(left.shape[0]):
        left[i] *= factor  # writes into the array: no new array, no counting needed


@compiled(cache=False)
def _scaled_sum(pair: Any, factor: float) -> float:
    """The counted entry point from Python."""
    _scale_left(pair, factor)
    return _weighted_sum(pair)


@compiled(cache=False)
def _left(pair: Any) -> Any:
    return pair.left


@compiled(cache=False)
def _replace_left(pair: Any, rows: int) -> None:
    pair.left = np.zeros(rows)


def test_uncounted_code_reads_and_writes_into_the_fields() -> None:
    pair = Pair(np.arange(4.0), np.array([1.0, 0.5, 0.25, 2.0]))  # type: ignore[no-untyped-call]
    assert _scaled_sum(pair, 2.0) == pytest.approx(2 * (0 + 0.5 + 0.5 + 6.0))
    np.testing.assert_array_equal(_left(pair), [0.0, 2.0, 4.0, 6.0])  # the same array, written


def test_counted_code_replaces_a_field() -> None:
    pair = Pair(np.arange(4.0), np.ones(3))  # type: ignore[no-untyped-call]
    _replace_left(pair, 3)
    np.testing.assert_array_equal(_left(pair), np.zeros(3))
    assert _scaled_sum(pair, 1.0) == 0.0


def test_replacing_a_field_without_counting_does_not_compile() -> None:
    @compiled(cache=False, reference_counted=False)
    def swap(pair: Any) -> None:
        pair.left = pair.right

    with pytest.raises(Exception, match="NRT required but not enabled"):
        swap(Pair(np.zeros(2), np.ones(2)))  # type: ignore[no-untyped-call]


def test_a_struct_read_by_uncounted_code_is_released(compiled_memory: Callable[[], int]) -> None:
    before = compiled_memory()
    pair = Pair(np.ones(1000), np.ones(1000))  # type: ignore[no-untyped-call]
    for _ in range(5):
        _scaled_sum(pair, 1.0)
    _replace_left(pair, 10)
    assert compiled_memory() > before  # the struct is alive while Python holds it
    del pair
    assert compiled_memory() == before
