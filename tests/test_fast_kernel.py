"""Parts of the fast engine's compiled kernel checked directly against numpy."""

from __future__ import annotations

import copy
import dataclasses
import threading
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from simulator.cores import available_cores
from simulator.engines import fast_engine
from simulator.engines import fast_kernel as kernel
from simulator.engines.compiled import compiled
from simulator.engines.fast_engine import Draws, run_fast
from simulator.engines.fast_kernel import _events_with_room, _with_room
from simulator.engines.sampling import RandomStreams
from simulator.ledger import Ledger
from simulator.scenario.loading import load_scenario

BASELINE = Path(__file__).parent.parent / "scenarios" / "baseline.toml"


def _bucket_times(kind: str, n: int, bucket: int, rng: np.random.Generator) -> np.ndarray:
    width = 1.0 / kernel.BUCKETS_PER_MONTH
    start = bucket * width
    if kind == "spread":
        return start + rng.random(n) * width
    if kind == "few distinct":  # many exact ties, as at renewals and zero-length delays
        return start + rng.integers(0, 5, n) * width / 8
    # Bunched into one slice of the counting sort and decreasing: the insertion pass would
    # take n² moves, so the kernel falls back to a merge sort.
    return start + width / 2 - np.arange(n) * 1e-12


@pytest.mark.parametrize("kind", ["spread", "few distinct", "bunched, decreasing"])
@pytest.mark.parametrize("n", [0, 1, 7, 500])
def test_a_bucket_is_ordered_by_time_then_by_scheduling_order(kind: str, n: int) -> None:
    rng = np.random.default_rng(n)
    bucket = 40
    t = _bucket_times(kind, n, bucket, rng)
    assert np.all((t * kernel.BUCKETS_PER_MONTH).astype(np.int64) == bucket)
    state = kernel.new_state(36.0, 64, 1)
    for i, time in enumerate(t):  # scheduled in this order: i is the tie-breaker
        kernel._push(state, float(time), i * 16 + kernel.K_INVITE, i)
    kernel._load_bucket(state, bucket)
    fields = dict(zip(kernel.STATE_FIELDS, kernel.arrays(state), strict=True))
    assert fields["c"][kernel.RUN_AT] == 0 and fields["c"][kernel.RUN_END] == n
    expected = np.lexsort((np.arange(n), t))
    np.testing.assert_array_equal(fields["ri"][:n, kernel.H_AUX], expected)
    np.testing.assert_array_equal(fields["ri"][:n, kernel.H_PAYLOAD], expected * 16 + kernel.K_INVITE)
    np.testing.assert_array_equal(fields["rt"][:n], t[expected])
    # The bucket's chunks are free again, and the bucket empty.
    assert fields["c"][kernel.CHUNKS_FREE] == -(-n // kernel.CHUNK)
    assert fields["bq"][bucket, kernel.B_HEAD] == fields["bq"][bucket, kernel.B_TAIL] == -1
    assert fields["bq"][bucket, kernel.B_COUNT] == 0


@compiled(cache=False)
def _with_room_then_stretch(s: kernel.StateRef, heap_rows: int) -> int:
    """A counted entry point (it releases the state when it returns) to the uncounted room check:
    `_with_room(s, heap_rows)`, then how many events have room."""
    _with_room(s, heap_rows)
    return _events_with_room(s)


def test_room_is_counted_for_a_stretch_of_events_and_named_pushes_end_it() -> None:
    state = kernel.new_state(36.0, 64, 1)
    c = kernel.arrays(state)[0]
    c[kernel.N_USERS], c[kernel.N_CHANGES], c[kernel.HEAP_SIZE] = 40, 90, 10
    events = _with_room_then_stretch(state, 0)
    free_and_room = [
        (c[kernel.CAP_USERS] - c[kernel.N_USERS], kernel.ROOM_USERS),
        (c[kernel.CAP_ACCOUNTS] - c[kernel.N_ACCOUNTS], kernel.ROOM_ACCOUNTS),
        (c[kernel.CAP_CHANGES] - c[kernel.N_CHANGES], kernel.ROOM_CHANGES),
        (c[kernel.CAP_SPEND] - c[kernel.N_SPEND], kernel.ROOM_SPEND),
        (c[kernel.CAP_HEAP] - c[kernel.HEAP_SIZE], kernel.ROOM_QUEUE),
        (c[kernel.CAP_CHUNKS] - c[kernel.CHUNKS_USED], kernel.ROOM_QUEUE),
    ]
    # Every array has room for that many events, each filling its most, and one has no more.
    assert events >= 1
    assert all(events * room <= free for free, room in free_and_room)
    assert any((events + 1) * room > free for free, room in free_and_room)
    # A check for named pushes (an activation's invites) ends the stretch; a plain one does not.
    c[kernel.ROOM_IN] = events
    _with_room_then_stretch(state, 0)
    assert c[kernel.ROOM_IN] == events
    _with_room_then_stretch(state, 3)
    assert c[kernel.ROOM_IN] == 0


@pytest.mark.parametrize("ahead", [False, True], ids=["drawn at each top-up", "drawn ahead"])
def test_rows_of_draws_start_small_double_at_each_top_up_and_lose_no_number(ahead: bool) -> None:
    scenario = load_scenario(BASELINE)
    segments = len(scenario.segments)
    state = kernel.new_state(36.0, 64, segments)
    fields = dict(zip(kernel.STATE_FIELDS, kernel.arrays(state), strict=True))
    dc, dn = fields["dc"], fields["dn"]
    row = kernel.D_ARRIVAL_EXP
    taken: list[float] = []
    sizes = []
    with Draws(scenario, RandomStreams(5), width=64, first=8, ahead=ahead) as draws:
        for used in (8, 3, 2, 16, 30, 64, 64):  # how many of the row's numbers the "kernel" takes
            draws.refill(state, segments)
            dr = kernel.arrays(state)[kernel.STATE_FIELDS.index("dr")]
            sizes.append(int(dn[row]))
            taken += list(dr[row, dc[row] : min(dc[row] + used, dn[row])])
            dc[:] = np.minimum(dc + used, dn)
    # Filled with 8, then twice as many at each top-up up to the width; a row with at least
    # half its last fill left is not topped up (the 16, with 13 and then 11 left).
    assert sizes == [8, 16, 16, 16, 32, 64, 64]
    # The numbers taken are the row's own sequence: none lost or repeated across top-ups,
    # and drawing into the row gives what drawing a new array would.
    expected = RandomStreams(5)["arrivals"].spawn(1)[0].standard_exponential(len(taken))
    np.testing.assert_array_equal(taken, expected)


@pytest.mark.parametrize("first", [0, kernel.DRAW_MARGIN, 2 * kernel.DRAW_MARGIN - 1, 65])
def test_rows_of_draws_too_small_to_serve_an_event_are_refused(first: int) -> None:
    with pytest.raises(ValueError, match="first"):
        Draws(load_scenario(BASELINE), RandomStreams(5), width=64, first=first)


def _fields(ledger: Ledger) -> dict[str, object]:
    out: dict[str, object] = {}
    for f in dataclasses.fields(ledger):
        value = getattr(ledger, f.name)
        if dataclasses.is_dataclass(value):
            out.update({f"{f.name}.{g.name}": getattr(value, g.name) for g in dataclasses.fields(value)})
        else:
            out[f.name] = value
    return out


@pytest.mark.parametrize("name", ["baseline", "referral_push", "price_rise_30", "land_and_expand"])
@pytest.mark.parametrize(
    "variant",
    [{"width": 64, "first": 8}, {"ahead": False}],
    ids=["rows of 8 to 64 numbers", "not drawn ahead"],
)
def test_results_do_not_depend_on_how_the_rows_of_draws_are_filled(
    name: str, variant: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario = load_scenario(BASELINE.parent / f"{name}.toml")
    default = _fields(run_fast(scenario, seed=3))
    # Rows of 8 to 64 numbers: hundreds of times more top-ups, at other moments of the run;
    # or every number drawn at the top-up that takes it, with no helper thread.
    monkeypatch.setattr(fast_engine, "Draws", partial(Draws, **variant))
    small = _fields(run_fast(scenario, seed=3))
    assert default.keys() == small.keys()
    for key, value in default.items():
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(value, small[key], err_msg=key)
        else:
            assert value == small[key], key


def _helper_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith(fast_engine.HELPER_THREAD)]


def test_a_run_leaves_no_helper_thread_behind_even_when_stopped() -> None:
    # A thread left running would make the local pool spawn its workers instead of forking.
    scenario = load_scenario(BASELINE)
    assert not _helper_threads()
    started: list[str] = []

    def stop_after_a_month(share: float) -> None:
        started.extend(_helper_threads())
        raise KeyboardInterrupt  # as a stale run in the terminal UI is stopped

    with pytest.raises(KeyboardInterrupt):
        run_fast(scenario, seed=3, on_progress=stop_after_a_month)
    run_fast(scenario, seed=3)
    if available_cores() > 1:
        assert started  # the helper did run (else this test shows nothing)
    assert not _helper_threads()


def test_a_run_releases_all_the_memory_its_compiled_code_allocated(compiled_memory: Callable[[], int]) -> None:
    # The event handlers run without reference counting (array_fields): a handler that kept
    # or dropped a reference wrongly would leave the state (or a draw array) allocated here.
    scenario = load_scenario(BASELINE)
    fast_engine._spare_states.clear()  # a state kept from an earlier run would be freed below
    before = compiled_memory()
    ledger = run_fast(scenario, seed=3, initial_rows=64)  # small: the arrays grow, many times
    assert ledger.users > 1000
    assert compiled_memory() > before  # the ledger's arrays, and the state kept for the next run
    del ledger
    fast_engine._spare_states.clear()
    assert compiled_memory() == before


def test_a_run_that_takes_over_a_finished_runs_state_gives_the_same_ledger() -> None:
    # run_fast reuses the arrays of the process's last finished run (kernel.renew_state); the
    # first ledger must not share them, and the second must not see what they held.
    trial = load_scenario(Path(__file__).parent.parent / "scenarios" / "trial_14d.toml")
    baseline = load_scenario(BASELINE)
    short = load_scenario(BASELINE, {"simulation.months": 7})  # fewer buckets in its calendar
    first = run_fast(trial, seed=2)
    kept = {f.name: copy.deepcopy(getattr(first, f.name)) for f in dataclasses.fields(first)}
    for scenario, seed in ((baseline, 4), (short, 5), (trial, 2)):
        reused = run_fast(scenario, seed=seed)
        fresh = run_fast(scenario, seed=seed, initial_rows=fast_engine.INITIAL_ROWS)
        _assert_same_ledger(reused, fresh)
    for name, value in kept.items():
        np.testing.assert_array_equal(getattr(first, name), value, err_msg=name)


def _assert_same_ledger(a: Ledger, b: Ledger) -> None:
    for f in dataclasses.fields(a):
        np.testing.assert_array_equal(getattr(a, f.name), getattr(b, f.name), err_msg=f.name)
