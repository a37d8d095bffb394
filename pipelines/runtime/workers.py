"""Worker pools behind a stage: threads, pinned worker processes, and an asyncio loop, with one shutdown contract.

Each pool takes :class:`Job` objects and completes their ``future``. Shutdown is the same for all three: finish what
is queued within the drain timeout, then abort (skip what is left, cancel coroutines, terminate processes) and join.
Threads cannot be killed in Python; a thread whose call is still running after the abort is left as a daemon thread
and counted as stuck (``fp_stage_stuck_workers_total``), so a blocking I/O function should carry its own timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import queue
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from pipelines.runtime.child import worker_main
from pipelines.runtime.deadline import Deadline, DeadlineExceeded
from pipelines.runtime.errors import TransientError
from pipelines.runtime.kinds import Terminal
from pipelines.runtime.metrics import StageMetrics

_POLL_S = 0.05
_ABORT_GRACE_S = 1.0
_SPAWN_TIMEOUT_S = 60.0


@dataclass
class Call:
    """One ``Stage.map`` call: its deadline and the flag that cancels its outstanding work."""

    deadline: Deadline
    cancelled: threading.Event = field(default_factory=threading.Event)


@dataclass
class Job:
    index: int
    item: Any
    call: Call
    future: Future[Any] = field(default_factory=Future)
    started_at: float | None = None


class Cancelled(Terminal, Exception):  # noqa: N818
    """Raised inside a worker when its call was cancelled (deadline, error elsewhere, shutdown)."""


class ThreadWorkers:
    """``count`` threads taking jobs from one queue; ``handle(worker_index, job)`` computes each result."""

    def __init__(self, name: str, count: int, handle: Callable[[int, Job], Any], metrics: StageMetrics) -> None:
        self._name = name
        self._handle = handle
        self._metrics = metrics
        self._queue: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self.abort = threading.Event()
        self._threads = [
            threading.Thread(target=self._loop, args=(i,), name=f"stage-{name}-{i}", daemon=True) for i in range(count)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, job: Job) -> None:
        self._queue.put(job)

    def _loop(self, worker_index: int) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            if self.abort.is_set() or job.call.cancelled.is_set():
                job.future.cancel()
            if not job.future.set_running_or_notify_cancel():
                self._metrics.dropped_queued(1)
                continue
            self._metrics.started()
            job.started_at = time.monotonic()
            try:
                result = self._handle(worker_index, job)
            except BaseException as error:  # handed to the caller through the future
                job.future.set_exception(error)
            else:
                job.future.set_result(result)

    def shutdown(self, drain_timeout: float) -> int:
        """Drain, then abort; returns the number of threads still running (stuck) at the end."""
        for _ in self._threads:
            self._queue.put(None)
        until = time.monotonic() + drain_timeout
        for thread in self._threads:
            thread.join(max(0.0, until - time.monotonic()))
        if any(t.is_alive() for t in self._threads):
            self.abort.set()
            until = time.monotonic() + _ABORT_GRACE_S
            for thread in self._threads:
                thread.join(max(0.0, until - time.monotonic()))
        return sum(t.is_alive() for t in self._threads)


# -- worker processes ----------------------------------------------------------------------------------------------
class WorkerCrashed(TransientError):  # noqa: N818
    """A worker process died while working on an item (killed, out of memory, crashed); retried on a fresh one."""


@dataclass
class WorkerProcess:
    process: Any  # multiprocessing.context.SpawnProcess
    conn: Connection
    cpu: int | None
    pid: int = 0
    affinity: list[int] = field(default_factory=list)


class ProcessWorkers:
    """One spawned process per slot, optionally pinned to ``cpus[i]``; a proxy thread per process feeds it.

    Spawn (not fork) is used because the parent is multi-threaded (stage threads, possibly a JVM bridge): forking a
    threaded process can deadlock the child. The cost is a fresh interpreter per worker (about 0.1-0.3 s at start).
    """

    def __init__(self, name: str, fn: Callable[[Any], Any], cpus: list[int | None]) -> None:
        self._name = name
        self._fn = fn
        self._cpus = cpus
        self._ctx = multiprocessing.get_context("spawn")
        self._lock = threading.Lock()
        self.workers: list[WorkerProcess | None] = [None] * len(cpus)
        started = [self._start(i) for i in range(len(cpus))]
        for i, worker in enumerate(started):
            self._wait_ready(worker)
            self.workers[i] = worker

    def _start(self, i: int) -> WorkerProcess:
        parent, child = self._ctx.Pipe(duplex=True)
        process = self._ctx.Process(
            target=worker_main, args=(child, self._fn, self._cpus[i]), name=f"stage-{self._name}-{i}", daemon=True
        )
        process.start()
        child.close()
        return WorkerProcess(process, parent, self._cpus[i])

    def _wait_ready(self, worker: WorkerProcess) -> None:
        if not worker.conn.poll(_SPAWN_TIMEOUT_S):
            self._stop(worker, 0.0)
            raise RuntimeError(f"stage {self._name!r}: a worker process did not start within {_SPAWN_TIMEOUT_S}s")
        _, worker.pid, worker.affinity = worker.conn.recv()

    def _worker(self, i: int) -> WorkerProcess:
        worker = self.workers[i]
        if worker is None or not worker.process.is_alive():
            if worker is not None:
                self._stop(worker, 0.0)
            worker = self._start(i)
            self._wait_ready(worker)
            self.workers[i] = worker
        return worker

    def call(self, i: int, item: Any, deadline: Deadline, cancel: threading.Event, abort: threading.Event) -> Any:
        """Run ``fn(item)`` in process ``i``; on deadline, cancellation or abort the process is terminated."""
        worker = self._worker(i)
        worker.conn.send(item)
        while not worker.conn.poll(deadline.wait_time(_POLL_S)):
            reason = (
                "deadline passed" if deadline.expired else "cancelled" if cancel.is_set() or abort.is_set() else None
            )
            if reason is not None:
                self._stop(worker, 0.0)
                self.workers[i] = None
                if deadline.expired:
                    raise DeadlineExceeded(f"stage {self._name!r}: worker process {worker.pid} terminated: {reason}")
                raise Cancelled(f"stage {self._name!r}: worker process {worker.pid} terminated: {reason}")
            if not worker.process.is_alive():
                self._stop(worker, 0.0)
                self.workers[i] = None
                raise WorkerCrashed(
                    f"stage {self._name!r}: worker process {worker.pid} died (exit code {worker.process.exitcode})"
                )
        try:
            kind, payload, text = worker.conn.recv()
        except (EOFError, OSError) as error:
            self._stop(worker, 0.0)
            self.workers[i] = None
            raise WorkerCrashed(f"stage {self._name!r}: worker process {worker.pid} died mid-reply") from error
        if kind == "ok":
            return payload
        if text:
            payload.add_note(f"in worker process {worker.pid} of stage {self._name!r}:\n{text}")
        raise payload

    @staticmethod
    def _stop(worker: WorkerProcess, grace: float) -> bool:
        """Ask the process to exit, wait ``grace`` s, then terminate, then kill. True if it had to be forced."""
        forced = False
        with contextlib.suppress(OSError, ValueError):
            worker.conn.send(None)
        worker.process.join(grace)
        if worker.process.is_alive():
            forced = True
            worker.process.terminate()
            worker.process.join(_ABORT_GRACE_S)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
        worker.conn.close()
        worker.process.close()
        return forced

    def shutdown(self, grace: float) -> int:
        """Stop every process (forcing stuck ones); returns how many had to be forced."""
        forced = 0
        for i, worker in enumerate(self.workers):
            if worker is not None:
                forced += self._stop(worker, grace)
                self.workers[i] = None
        return forced


# -- asyncio ---------------------------------------------------------------------------------------------------------
class AsyncWorkers:
    """An event loop in one owned thread; each job is a task; at most ``count`` run at once."""

    def __init__(self, name: str, count: int, handle: Callable[[Job], Awaitable[Any]], metrics: StageMetrics) -> None:
        self._name = name
        self._handle = handle
        self._metrics = metrics
        self._count = count
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._thread = threading.Thread(target=self._run_loop, name=f"stage-{name}-loop", daemon=True)
        self._thread.start()
        self._ready.wait()
        self._semaphore = asyncio.run_coroutine_threadsafe(self._make_semaphore(), self._loop).result()

    def _run_loop(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.call_soon(self._ready.set)
        self._loop.run_forever()

    async def _make_semaphore(self) -> asyncio.Semaphore:
        return asyncio.Semaphore(self._count)

    def submit(self, job: Job) -> None:
        job.future = asyncio.run_coroutine_threadsafe(self._run(job), self._loop)

    async def _run(self, job: Job) -> Any:
        task = asyncio.current_task()
        self._tasks.add(task)  # type: ignore[arg-type]
        started = False
        try:
            async with self._semaphore:
                if job.call.cancelled.is_set():
                    raise asyncio.CancelledError
                self._metrics.started()
                started = True
                job.started_at = time.monotonic()
                return await self._handle(job)
        finally:
            self._tasks.discard(task)  # type: ignore[arg-type]
            if not started:
                self._metrics.dropped_queued(1)

    async def _drain(self, timeout: float) -> int:
        tasks = set(self._tasks)
        if tasks:
            _, still = await asyncio.wait(tasks, timeout=timeout)
            for task in still:
                task.cancel()
            if still:
                await asyncio.wait(still, timeout=_ABORT_GRACE_S)
            return sum(not t.done() for t in still)
        return 0

    def shutdown(self, drain_timeout: float) -> int:
        stuck = asyncio.run_coroutine_threadsafe(self._drain(drain_timeout), self._loop).result()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        with contextlib.suppress(RuntimeError):
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
        self._loop.close()
        return stuck
