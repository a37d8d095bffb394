"""Shutdown: nothing leaks (threads, child processes, fds), stuck workers are terminated, SIGTERM drains and stops."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from pathlib import Path

import pytest
import rt_fns

from pipelines.runtime import Deadline, Stage, StageConfig, StageError, StageStopped, StageTimeout, stop_on_sigterm


def _children() -> set[int]:
    me = str(os.getpid())
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(") ", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if fields[1] == me:
            found.add(int(stat.parent.name))
    return found


def _snapshot() -> tuple[set[str], set[int], set[str]]:
    threads = {f"{t.name}:{t.ident}" for t in threading.enumerate()}
    return threads, _children(), set(os.listdir("/proc/self/fd"))


def _settle(baseline: tuple[set[str], set[int], set[str]], seconds: float = 5.0) -> tuple:
    deadline = time.monotonic() + seconds
    while True:
        now = _snapshot()
        if now == baseline or time.monotonic() > deadline:
            return now
        time.sleep(0.02)


async def _async_double(x: int) -> int:
    await asyncio.sleep(0)
    return 2 * x


def _exercise_every_kind() -> None:
    with Stage("leak-cpu", rt_fns.fail_on_three, kind="cpu", config=StageConfig()) as stage:
        assert list(stage.map([1, 2])) == [1, 2]
        with pytest.raises(StageError):
            list(stage.map(range(10)))
    with (
        Stage("leak-cpu-hang", rt_fns.sleep_then_echo, kind="cpu", config=StageConfig(workers=1)) as stage,
        pytest.raises(StageTimeout),
    ):
        list(stage.map([(30.0, 1)], deadline=Deadline.after(0.1)))
    with Stage("leak-thread", rt_fns.double, kind="thread", config=StageConfig(workers=3)) as stage:
        for result in stage.map(range(100)):
            if result > 20:
                break  # an abandoned map: the stage still drains and joins on exit
    with Stage("leak-async", _async_double, kind="async", config=StageConfig(workers=5)) as stage:
        assert list(stage.map(range(50))) == [2 * x for x in range(50)]


def test_threads_processes_and_fds_return_to_the_baseline() -> None:
    _exercise_every_kind()  # first use creates lazy, process-wide things (import caches, asyncio policy)
    baseline = _snapshot()
    _exercise_every_kind()
    threads, children, fds = _settle(baseline)
    assert threads == baseline[0], "threads left behind"
    assert children == baseline[1], "child processes left behind"
    assert fds == baseline[2], "file descriptors left open"


def test_a_stuck_worker_process_is_terminated_at_shutdown() -> None:
    stage = Stage("stuck-cpu", rt_fns.sleep_then_echo, kind="cpu", config=StageConfig(workers=1, drain_timeout_s=0.3))
    baseline = _children()
    stage.start()
    pid = stage._processes.workers[0].pid  # type: ignore[union-attr]
    outcome: list[BaseException] = []

    def consume() -> None:
        try:
            list(stage.map([(60.0, 1), (0.0, 2)]))
        except BaseException as error:
            outcome.append(error)

    consumer = threading.Thread(target=consume)
    consumer.start()
    time.sleep(0.3)  # the worker is now inside its 60 s call
    started = time.monotonic()
    stage.close()
    closed_in = time.monotonic() - started
    consumer.join(5)
    assert closed_in < 3.0  # drain timeout (0.3 s) plus termination, not the 60 s call
    assert _children() == baseline and not Path(f"/proc/{pid}").exists()
    assert len(outcome) == 1 and isinstance(outcome[0], StageError)
    assert outcome[0].unprocessed == [(60.0, 1), (0.0, 2)]  # nothing lost


def test_a_stuck_thread_is_counted_and_left_as_a_daemon() -> None:
    release = threading.Event()
    stage = Stage("stuck-thread", release.wait, kind="thread", config=StageConfig(workers=1, drain_timeout_s=0.1))
    stage.start()
    results = stage.map([30.0])
    consumer = threading.Thread(target=lambda: list(results))
    consumer.start()
    time.sleep(0.1)
    started = time.monotonic()
    stage.close()
    assert time.monotonic() - started < 3.0
    assert stage.metrics.stuck_workers == 1  # Python cannot kill a thread: it is reported, never waited on forever
    release.set()
    consumer.join(5)
    assert not any(t.name.startswith("stage-stuck-thread") for t in threading.enumerate() if t.is_alive())


@pytest.mark.parametrize("kind", ["thread", "cpu"])
def test_sigterm_drains_in_flight_work_and_keeps_the_rest(kind: str) -> None:
    items = [(0.02, i) for i in range(300)]
    handler_before = signal.getsignal(signal.SIGTERM)
    done: list[int] = []
    config = StageConfig(workers=2 if kind == "thread" else None, queue_size=4, drain_timeout_s=5)
    fn = rt_fns.sleep_then_echo
    with Stage(f"sigterm-{kind}", fn, kind=kind, config=config) as stage, stop_on_sigterm(stage):  # type: ignore[arg-type]
        timer = threading.Timer(0.4, os.kill, (os.getpid(), signal.SIGTERM))
        timer.start()
        started = time.monotonic()
        with pytest.raises(StageStopped) as caught:
            done.extend(stage.map(items))
        stopped_in = time.monotonic() - started
        timer.join()
    assert signal.getsignal(signal.SIGTERM) is handler_before
    assert 0 < len(done) < len(items) and stopped_in < 3.0
    assert done == list(range(len(done)))  # finished in-flight items were handed back in order
    assert caught.value.unprocessed == items[len(done) :]  # and the rest is kept: nothing lost, nothing twice


def test_stop_with_a_stuck_item_ends_after_the_drain_timeout() -> None:
    release = threading.Event()
    config = StageConfig(workers=1, queue_size=2, drain_timeout_s=0.2)
    with Stage("stop-stuck", release.wait, kind="thread", config=config) as stage:
        timer = threading.Timer(0.1, stage.stop)
        timer.start()
        started = time.monotonic()
        with pytest.raises(StageStopped, match="did not drain") as caught:
            list(stage.map([30.0, 31.0, 32.0, 33.0]))
        assert time.monotonic() - started < 2.0
        release.set()
    assert caught.value.unprocessed == [30.0, 31.0, 32.0, 33.0]
