"""Where replications run: in this process, on a local process pool, or on a Dask cluster.

Every executor runs the same pure job (a scenario and a seed in, a `RunDigest` out), so a
job gives the same numbers wherever it runs; only the order in which jobs finish differs,
and callers put results back in job order.
"""

from __future__ import annotations

import gc
import queue
import signal
import sys
import threading
import traceback
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from functools import partial
from multiprocessing import get_all_start_methods, get_context
from types import TracebackType
from typing import Any, Protocol

from simulator.cores import available_cores, share_cores
from simulator.engines.simpy_engine import SimulationLimitError
from simulator.runner.digest import RunDigest, RunFailure
from simulator.scenario.loading import ScenarioError
from simulator.scenario.models import Scenario

Outcome = RunDigest | RunFailure


@dataclass(frozen=True)
class Job:
    """One replication: a validated scenario and the seed to run it with."""

    scenario: Scenario
    seed: int


def simulate(job: Job) -> Outcome:
    """Run one job. Failures come back as values, so one bad run never stops a batch."""
    from simulator.api import run

    try:
        return RunDigest.of(run(job.scenario, seed=job.seed))
    except SimulationLimitError as exc:
        return RunFailure(job.seed, f"run stopped: {exc}")
    except ScenarioError as exc:
        return RunFailure(job.seed, str(exc), bad_input=True)
    except Exception as exc:  # any failure of one run is recorded, never fatal to the others
        return RunFailure(job.seed, f"{type(exc).__name__}: {exc}", traceback.format_exc())


class ExecutorError(Exception):
    """An executor that cannot be used (missing package, unreachable scheduler)."""


class Executor(Protocol):
    """Runs jobs and yields `(job index, outcome)` as each finishes."""

    workers: int
    description: str

    def run(self, jobs: Sequence[Job]) -> Iterator[tuple[int, Outcome]]: ...

    def close(self) -> None: ...


class LocalExecutor:
    """A pool of worker processes on this machine; with one worker, jobs run in this process."""

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers if workers is not None else available_cores()
        if self.workers < 1:
            raise ExecutorError("--workers must be at least 1")
        self.description = f"local, {self.workers} worker{'s' if self.workers > 1 else ''}"
        self._pool: ProcessPoolExecutor | None = None

    def run(self, jobs: Sequence[Job]) -> Iterator[tuple[int, Outcome]]:
        if self.workers == 1 or len(jobs) <= 1:
            for i, job in enumerate(jobs):
                yield i, simulate(job)
            return
        forking = False
        if self._pool is None:
            method = start_method()
            forking = method == "fork"  # a forking pool starts its workers at the first submit
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=get_context(method),
                initializer=_start_worker,
                initargs=(self.workers,),
            )
        # NOTE: Ctrl-C must not land while this thread holds a future's lock: the pool's
        # management thread, failing the pending futures after _terminate, would wait for that
        # lock forever, and the command would hang. concurrent.futures.wait takes the lock of
        # every pending future on each call (a batch of 2,000 replications hung that way), so
        # the finished futures are handed over by callbacks instead, through a queue whose
        # blocking get leaves nothing held when interrupted; Ctrl-C is held back while jobs
        # are submitted and their callbacks registered.
        finished: queue.SimpleQueue[tuple[int, Future[Outcome]]] = queue.SimpleQueue()
        with _frozen_for_fork() if forking else nullcontext(), _interrupts_held():
            for i, job in enumerate(jobs):
                future = self._pool.submit(simulate, job)
                future.add_done_callback(partial(_hand_over, finished, i))
        try:
            for _ in jobs:
                i, future = finished.get()
                yield i, future.result()
        except BaseException:
            self._terminate()
            raise

    def _terminate(self) -> None:
        """Stop at once, abandoning runs in flight (used on Ctrl-C and on errors)."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        # NOTE: ProcessPoolExecutor has no public way to stop a running task; its worker
        # processes are terminated directly so Ctrl-C does not wait for a long replication.
        # Futures are not cancelled first: the pool then fails every pending one as broken,
        # whereas failing an already cancelled future raises in its management thread.
        for process in list(getattr(pool, "_processes", {}).values()):
            process.terminate()
        pool.shutdown(wait=True)

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def _hand_over(finished: queue.SimpleQueue[tuple[int, Future[Outcome]]], index: int, future: Future[Outcome]) -> None:
    finished.put((index, future))


@contextmanager
def _interrupts_held() -> Iterator[None]:
    """Hold back Ctrl-C (SIGINT) and SIGTERM in this thread until the block ends, where the
    system then delivers them (where signals can be masked; elsewhere nothing is held)."""
    held = {signal.SIGINT, signal.SIGTERM}
    if not hasattr(signal, "pthread_sigmask") or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def start_method() -> str:
    """How to start worker processes: 'fork' where it is safe, 'spawn' otherwise.

    A forked worker starts with this process's imports and compiled engine (a spawned one spends
    about 1.5 s importing numpy, scipy and numba and loading the engine). Forking is safe only
    on Linux (macOS's system libraries may crash a forked child) and only while this process
    runs a single thread: a progress bar or a UI runs threads whose locks a child would inherit
    held. Otherwise workers are spawned: they start clean.
    """
    if sys.platform.startswith("linux") and "fork" in get_all_start_methods() and threading.active_count() == 1:
        return "fork"
    return "spawn"


@contextmanager
def _frozen_for_fork() -> Iterator[None]:
    """Collect this process's garbage and freeze its objects while workers are forked.

    NOTE: for performance reasons. A forked worker inherits every object of this process,
    garbage included, and its own garbage collector would traverse them all, writing to each
    and so copying the pages they live on. After a long SimPy run the parent held 1.4 million
    such objects (0.9 million of them cyclic garbage), and 100 replications on two workers took
    12.9 s instead of 6.2 s. Collected and frozen (CPython's advice for forking), the
    inherited objects are left alone by the workers; the parent unfreezes its own afterwards.
    """
    gc.collect()
    if gc.get_freeze_count() > 0:  # the caller manages freezing: left to it
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _start_worker(workers: int) -> None:
    # Workers ignore Ctrl-C, so that only the parent handles it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A forked worker inherits the parent's handlers: the command line turns SIGTERM into an
    # interruption, but a worker is stopped by SIGTERM (see _terminate), silently.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    # Forked (or spawned) while the parent held signals back (_interrupts_held), a worker
    # starts with them blocked: SIGTERM must reach it.
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
    # The workers split the cores: a helper thread of a worker's own (the fast engine's draws
    # ahead) would only take turns with a sibling. 100 replications of 10^5 signups on 2 workers
    # took 7.2-9.2 s (median 8.4 s) without the helpers, 7.8-10.1 s (median 9.2 s) with them.
    share_cores(workers)


def simulate_on_dask(job: Job, threads_on_host: Mapping[str, int]) -> Outcome:
    """`simulate` on a Dask worker, which first takes its share of its host's cores: the
    worker threads of every worker on the host split them, as a local pool's workers do.
    (100 replications of 10^5 on two one-thread workers on 2 cores: median 10.2 s in six runs,
    against 11.8 s with each worker starting the fast engine's helper thread.)"""
    from dask.distributed import get_worker

    share_cores(threads_on_host.get(get_worker().host, 1))
    return simulate(job)


class DaskExecutor:
    """Jobs sent to a Dask distributed cluster (`dask scheduler` plus `dask worker`s).

    Workers must have the same plgsim version installed; results are then identical to a
    local run with the same seeds.
    """

    def __init__(self, address: str, timeout: float = 10.0) -> None:
        try:
            from dask.distributed import Client
        except ImportError:
            raise ExecutorError("--scheduler needs Dask's distributed scheduler: pip install 'plgsim[dask]'") from None
        try:
            self._client: Any = Client(address, timeout=timeout)  # type: ignore[no-untyped-call]
        except (OSError, TimeoutError) as exc:
            raise ExecutorError(f"cannot reach the Dask scheduler at {address}: {exc}") from None
        except ValueError as exc:  # a malformed address
            raise ExecutorError(
                f"--scheduler {address!r}: not a scheduler address ({exc}); e.g. tcp://host:8786"
            ) from None
        workers = self._client.scheduler_info().get("workers", {})
        self.workers = sum(w.get("nthreads", 1) for w in workers.values()) or 1
        self.description = f"Dask at {address}, {len(workers)} workers"

    def run(self, jobs: Sequence[Job]) -> Iterator[tuple[int, Outcome]]:
        from dask.distributed import as_completed

        threads_on_host: Counter[str] = Counter()
        for worker in self._client.scheduler_info().get("workers", {}).values():
            threads_on_host[worker.get("host", "")] += worker.get("nthreads", 1)
        futures = [self._client.submit(simulate_on_dask, job, threads_on_host, pure=False) for job in jobs]
        index = {future.key: i for i, future in enumerate(futures)}
        try:
            for future in as_completed(futures):  # type: ignore[no-untyped-call]
                yield index[future.key], future.result()
        except BaseException:
            self._client.cancel(futures)
            raise

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> DaskExecutor:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def make_executor(workers: int | None = None, scheduler: str | None = None) -> LocalExecutor | DaskExecutor:
    """A Dask executor when `scheduler` is given, else a local pool of `workers` processes."""
    if scheduler is not None:
        return DaskExecutor(scheduler)
    return LocalExecutor(workers)
