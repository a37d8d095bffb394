"""Stage: one step of the Python side (commit, load, backfill, checks) run by a pool of workers of a declared kind.

    with Stage("online-load", write_batch, kind="thread", config=settings.stage("online-load"),
               tokens=len) as stage:
        for written in stage.map(batches, deadline=Deadline.after(300)):
            ...

Kinds: ``cpu`` runs ``fn`` in worker processes pinned to CPUs (real parallelism despite the GIL; ``fn`` must be a
picklable module-level function, and items and results cross a pipe); ``thread`` runs it in threads (blocking I/O);
``async`` runs a coroutine function on an event loop owned by the stage.

What ``map`` guarantees:

* results come back in input order; input is read lazily and at most ``workers + queue_size`` items are in flight,
  so memory stays bounded whatever the input rate (a slow stage slows its producer: backpressure);
* each item passes the stage's limiter (``tokens(item)`` tokens; rate, burst and concurrency from the config) and is
  retried on transient errors with exponential backoff and jitter;
* the call's ``deadline`` (and ``config.timeout_s`` per item) is enforced: outstanding work is cancelled (queued items
  dropped, coroutines cancelled, busy worker processes terminated) and :class:`StageTimeout` is raised;
* a terminal error (or exhausted retries) stops the call with one :class:`StageError` naming the stage and item and
  carrying every item not handed back (``unprocessed``, in order, plus ``rest``): nothing is lost. Items after the
  failing one that had already finished are in ``unprocessed`` too, so recovery is at-least-once;
* ``stop()`` (or SIGTERM via :func:`pipelines.runtime.stop_on_sigterm`) stops taking input, hands back what finishes
  within ``drain_timeout_s``, then raises :class:`StageStopped` with the rest.

Leaving the ``with`` block drains queued work within ``drain_timeout_s``, then terminates stuck worker processes and
joins every thread and process the stage started.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import pickle
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, wait
from types import TracebackType
from typing import Any, Generic, Literal, TypeVar

from pipelines.runtime.clock import SYSTEM_CLOCK, Clock
from pipelines.runtime.config import DEFAULT_IO_WORKERS, StageConfig
from pipelines.runtime.deadline import Deadline, DeadlineExceeded
from pipelines.runtime.errors import StageError, StageStopped, StageTimeout
from pipelines.runtime.limiter import HybridLimiter, LimitExceeded, RateLimited
from pipelines.runtime.metrics import StageMetrics
from pipelines.runtime.retry import RetryPolicy
from pipelines.runtime.workers import AsyncWorkers, Call, Cancelled, Job, ProcessWorkers, ThreadWorkers

T = TypeVar("T")
R = TypeVar("R")
Kind = Literal["cpu", "thread", "async"]
_POLL_S = 0.05


def _one_token(item: Any) -> int:
    return 1


def allowed_cpus() -> list[int]:
    """The CPUs this process may run on (respects taskset/cgroup cpusets), sorted."""
    return sorted(os.sched_getaffinity(0))


class Stage(Generic[T, R]):
    """A named pool of workers applying ``fn`` to items; see the module docstring for the guarantees.

    Optional keyword extras: ``limiter`` (share one limiter between stages that hit the same service), ``retry``
    (a full :class:`RetryPolicy` instead of ``config.retries`` with default delays), ``clock`` (tests).
    """

    def __init__(
        self,
        name: str,
        fn: Callable[[T], R],
        *,
        kind: Kind,
        config: StageConfig | None = None,
        tokens: Callable[[T], int] = _one_token,
        limiter: HybridLimiter | None = None,
        retry: RetryPolicy | None = None,
        clock: Clock | None = None,
    ) -> None:
        if kind not in ("cpu", "thread", "async"):
            raise ValueError(f"stage {name!r}: kind must be 'cpu', 'thread' or 'async', got {kind!r}")
        config = config or StageConfig()
        is_coroutine = inspect.iscoroutinefunction(fn)
        if kind == "async" and not is_coroutine:
            raise TypeError(f"stage {name!r}: an async stage needs an 'async def' function")
        if kind != "async" and is_coroutine:
            raise TypeError(f"stage {name!r}: a coroutine function needs kind='async'")
        self.name = name
        self.kind = kind
        self.config = config
        self._fn = fn
        self._tokens = tokens
        self._clock = clock or SYSTEM_CLOCK
        self._retry = retry or RetryPolicy(max_attempts=config.retries + 1)
        self._cpus: list[int | None] = self._plan_cpus() if kind == "cpu" else []
        if kind == "cpu":
            self.workers = len(self._cpus)
            try:
                pickle.dumps(fn)
            except Exception as error:
                raise TypeError(f"stage {name!r}: a cpu stage needs a picklable module-level function") from error
        else:
            self.workers = config.workers or config.concurrency or DEFAULT_IO_WORKERS
        if limiter is None and (config.rate is not None or config.concurrency is not None):
            limiter = HybridLimiter(config.rate, config.burst, config.concurrency, clock=clock, name=name)
        self.limiter = limiter
        self.metrics = StageMetrics(name)
        self.max_in_flight = self.workers + config.queue_size
        self._stop = threading.Event()
        self._pool: ThreadWorkers | AsyncWorkers | None = None
        self._processes: ProcessWorkers | None = None

    def _plan_cpus(self) -> list[int | None]:
        allowed = allowed_cpus()
        cpus = list(self.config.cpus) if self.config.cpus is not None else allowed
        unknown = sorted(set(cpus) - set(allowed))
        if unknown or not cpus:
            raise ValueError(f"stage {self.name!r}: cpus {cpus} are not all usable here (allowed: {allowed})")
        workers = self.config.workers or len(cpus)
        if workers > len(cpus):
            raise ValueError(
                f"stage {self.name!r}: {workers} cpu workers but only {len(cpus)} CPUs {cpus}; "
                "more processes than CPUs only adds contention"
            )
        return [cpus[i] if self.config.pin else None for i in range(workers)]

    # -- lifecycle ------------------------------------------------------------------------------------------------
    def __enter__(self) -> Stage[T, R]:
        self.start()
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def start(self) -> None:
        """Start the workers (processes are spawned and pinned now, so the first item pays no start-up)."""
        if self._pool is not None:
            return
        self._stop.clear()
        if self.kind == "cpu":
            self._processes = ProcessWorkers(self.name, self._fn, self._cpus)
            self._pool = ThreadWorkers(self.name, self.workers, self._handle_cpu, self.metrics)
        elif self.kind == "thread":
            self._pool = ThreadWorkers(self.name, self.workers, self._handle_thread, self.metrics)
        else:
            self._pool = AsyncWorkers(self.name, self.workers, self._handle_async, self.metrics)

    def close(self, drain_timeout: float | None = None) -> None:
        """Finish queued work within ``drain_timeout`` (default ``config.drain_timeout_s``), then force the rest."""
        if self._pool is None:
            return
        timeout = self.config.drain_timeout_s if drain_timeout is None else drain_timeout
        started = time.monotonic()
        stuck = self._pool.shutdown(timeout)
        if self._processes is not None:
            self._processes.shutdown(max(0.0, timeout - (time.monotonic() - started)))
            self._processes = None
        self.metrics.stuck(stuck)
        self._pool = None

    def stop(self) -> None:
        """Ask running ``map`` calls to stop taking input and drain (safe from signal handlers and other threads)."""
        self._stop.set()

    @property
    def worker_affinities(self) -> list[list[int]]:
        """cpu stages: the CPU set each worker process reported from inside itself after pinning."""
        if self._processes is None:
            return []
        return [w.affinity for w in self._processes.workers if w is not None]

    # -- running one item -----------------------------------------------------------------------------------------
    def _item_deadline(self, job: Job) -> Deadline:
        if self.config.timeout_s is None:
            return job.call.deadline
        return job.call.deadline.earliest(Deadline.after(self.config.timeout_s, clock=self._clock))

    def _retry_or_raise(self, job: Job, error: Exception, attempt: int, deadline: Deadline) -> float:
        """Return the backoff before the next attempt, or re-raise when the error is terminal or retries are spent."""
        if job.call.cancelled.is_set() or not self._retry.should_retry(error, attempt):
            raise error
        delay = self._retry.delay(attempt)
        left = deadline.remaining()
        if left is not None and delay >= left:
            raise DeadlineExceeded(
                f"stage {self.name!r}: item {job.index}: no time left for retry {attempt + 1} "
                f"after {type(error).__name__}: {error}"
            ) from error
        self.metrics.retried()
        return delay

    def _backoff(self, job: Job, delay: float) -> None:
        if self._clock is SYSTEM_CLOCK:
            if job.call.cancelled.wait(delay):  # a cancelled call stops backing off at once
                raise Cancelled(f"stage {self.name!r}: item {job.index} cancelled during backoff")
        else:
            self._clock.sleep(delay)

    def _run_blocking(self, job: Job, call: Callable[[T, Deadline], R]) -> R:
        deadline = self._item_deadline(job)
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            try:
                deadline.check(f"stage {self.name!r} item {job.index}")
                if self.limiter is None:
                    result = call(job.item, deadline)
                else:
                    asked = time.monotonic()
                    try:
                        permit = self.limiter.acquire(self._tokens(job.item), deadline).__enter__()
                    except (LimitExceeded, RateLimited):
                        self.metrics.limiter_rejected()
                        raise
                    self.metrics.limiter_waited(time.monotonic() - asked)
                    try:
                        result = call(job.item, deadline)
                    finally:
                        permit.__exit__(None, None, None)
            except Exception as error:
                self._backoff(job, self._retry_or_raise(job, error, attempt, deadline))
                continue
            self.metrics.succeeded(time.monotonic() - started)
            return result

    def _handle_thread(self, worker_index: int, job: Job) -> R:
        return self._run_blocking(job, lambda item, deadline: self._fn(item))

    def _handle_cpu(self, worker_index: int, job: Job) -> R:
        processes, pool = self._processes, self._pool
        assert processes is not None and isinstance(pool, ThreadWorkers)
        return self._run_blocking(
            job, lambda item, deadline: processes.call(worker_index, item, deadline, job.call.cancelled, pool.abort)
        )

    async def _handle_async(self, job: Job) -> R:
        deadline = self._item_deadline(job)
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            try:
                deadline.check(f"stage {self.name!r} item {job.index}")
                if self.limiter is None:
                    result = await self._await_fn(job, deadline)
                else:
                    asked = time.monotonic()
                    try:
                        permit = await self.limiter.acquire_async(self._tokens(job.item), deadline).__aenter__()
                    except (LimitExceeded, RateLimited):
                        self.metrics.limiter_rejected()
                        raise
                    self.metrics.limiter_waited(time.monotonic() - asked)
                    try:
                        result = await self._await_fn(job, deadline)
                    finally:
                        await permit.__aexit__(None, None, None)
            except Exception as error:
                delay = self._retry_or_raise(job, error, attempt, deadline)
                await self._clock.sleep_async(delay)
                continue
            self.metrics.succeeded(time.monotonic() - started)
            return result

    async def _await_fn(self, job: Job, deadline: Deadline) -> R:
        left = deadline.remaining()
        try:
            return await asyncio.wait_for(self._fn(job.item), left)  # type: ignore[arg-type, misc]
        except TimeoutError:
            if deadline.expired:
                raise DeadlineExceeded(f"stage {self.name!r}: item {job.index} cancelled: deadline passed") from None
            raise

    # -- map --------------------------------------------------------------------------------------------------------
    def map(self, items: Iterable[T], deadline: Deadline | None = None) -> Iterator[R]:
        """Apply the stage to ``items``; yields results in input order. See the module docstring for guarantees."""
        if self._pool is None:
            raise RuntimeError(f"stage {self.name!r} is not started: use 'with Stage(...) as stage:'")
        return self._map(items, deadline or Deadline.never())

    def _map(self, items: Iterable[T], deadline: Deadline) -> Iterator[R]:
        call = Call(deadline)
        source = iter(items)
        sized = isinstance(items, Sequence)
        pending: deque[Job] = deque()
        index = 0
        exhausted = False
        drain_until: float | None = None
        finished = False
        try:
            while True:
                if self._stop.is_set() and drain_until is None:
                    drain_until = time.monotonic() + self.config.drain_timeout_s
                while not exhausted and drain_until is None and len(pending) < self.max_in_flight:
                    try:
                        item = next(source)
                    except StopIteration:
                        exhausted = True
                        break
                    pending.append(self._submit(index, item, call))
                    index += 1
                if not pending:
                    if exhausted:
                        finished = True
                        return
                    raise self._failure(StageStopped, None, None, pending, source, sized, "stopped before all input")
                head = pending[0]
                if not self._wait_head(head, call, drain_until):
                    if drain_until is not None and time.monotonic() >= drain_until and not call.deadline.expired:
                        raise self._failure(
                            StageStopped,
                            head.index,
                            None,
                            pending,
                            source,
                            sized,
                            f"stopped; in-flight work did not drain within {self.config.drain_timeout_s}s",
                        )
                    what = "the call's deadline passed" if call.deadline.expired else "the item timeout passed"
                    raise self._failure(
                        StageTimeout,
                        head.index,
                        DeadlineExceeded(what),
                        pending,
                        source,
                        sized,
                        f"stage {self.name!r} timed out at item {head.index}: {what}; outstanding work cancelled",
                    )
                if not head.future.done():
                    continue  # a stop request arrived: the loop starts the drain clock, then waits again
                error = head.future.exception() if not head.future.cancelled() else Cancelled("cancelled")
                if error is not None:
                    kind = StageTimeout if isinstance(error, DeadlineExceeded) else StageError
                    raise self._failure(kind, head.index, error, pending, source, sized, None) from error
                pending.popleft()
                self.metrics.handed_back()
                yield head.future.result()
        finally:
            if not finished:
                self._cancel(call, pending)

    def _submit(self, index: int, item: T, call: Call) -> Job:
        job = Job(index, item, call)
        self.metrics.submitted()
        self._pool.submit(job)  # type: ignore[union-attr]
        return job

    def _wait_head(self, head: Job, call: Call, drain_until: float | None) -> bool:
        """Wait for the oldest job; False when the call deadline, the item timeout or the drain time ran out."""
        while not head.future.done():
            now = time.monotonic()
            limits = [_POLL_S]
            left = call.deadline.remaining()
            if left is not None:
                limits.append(left)
            if self.config.timeout_s is not None and head.started_at is not None:
                limits.append(head.started_at + self.config.timeout_s - now)
            if drain_until is not None:
                limits.append(drain_until - now)
            timeout = min(limits)
            if timeout <= 0:
                return head.future.done()
            if self._stop.is_set() and drain_until is None:
                return True  # let the loop start the drain clock; head is re-waited
            wait([head.future], timeout, return_when=FIRST_COMPLETED)
        return True

    def _failure(
        self,
        kind: type[StageError],
        item_index: int | None,
        cause: BaseException | None,
        pending: deque[Job],
        source: Iterator[T],
        sized: bool,
        message: str | None,
    ) -> StageError:
        unprocessed = [job.item for job in pending]
        rest: Iterator[T] | None = source
        if sized:
            unprocessed.extend(source)
            rest = None
        if kind is StageTimeout:
            self.metrics.timed_out()
        elif kind is StageError:
            self.metrics.failed()
        return kind(self.name, item_index, cause, unprocessed, rest, message)

    def _cancel(self, call: Call, pending: deque[Job]) -> None:
        call.cancelled.set()
        for job in pending:
            job.future.cancel()
        if pending:
            self.metrics.handed_back(len(pending))
        pending.clear()
