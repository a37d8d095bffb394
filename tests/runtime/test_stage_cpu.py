"""cpu stages: worker processes pinned to CPUs (verified from inside them), errors and deadlines across the pipe."""

from __future__ import annotations

import os
import time

import pytest
import rt_fns

from pipelines.runtime import Deadline, Stage, StageConfig, StageError, StageTimeout, allowed_cpus


def test_one_pinned_worker_per_allowed_cpu_verified_from_inside() -> None:
    cpus = allowed_cpus()
    with Stage("pinned", rt_fns.affinity, kind="cpu", config=StageConfig()) as stage:
        assert stage.workers == len(cpus)
        assert sorted(map(tuple, stage.worker_affinities)) == [(cpu,) for cpu in cpus]
        seen = list(stage.map(range(8 * len(cpus))))
    pids = {pid for pid, _ in seen}
    assert os.getpid() not in pids and 1 <= len(pids) <= len(cpus)
    assert all(len(affinity) == 1 and affinity[0] in cpus for _, affinity in seen)  # each call ran on one CPU only
    by_pid: dict[int, set[int]] = {}
    for pid, affinity in seen:
        by_pid.setdefault(pid, set()).update(affinity)
    assert all(len(cpu_set) == 1 for cpu_set in by_pid.values())  # a worker stays on its own CPU
    assert len(set().union(*by_pid.values())) == len(pids)  # different workers, different CPUs


def test_a_configured_cpu_list_and_unpinned_workers() -> None:
    cpus = allowed_cpus()
    last = cpus[-1]
    with Stage("one-cpu", rt_fns.affinity, kind="cpu", config=StageConfig(cpus=[last])) as stage:
        assert stage.workers == 1
        assert {tuple(a) for _, a in stage.map(range(4))} == {(last,)}
    with Stage("unpinned", rt_fns.affinity, kind="cpu", config=StageConfig(workers=1, pin=False)) as stage:
        assert {tuple(a) for _, a in stage.map(range(2))} == {tuple(cpus)}


def test_never_more_workers_than_cpus_and_only_usable_cpus() -> None:
    cpus = allowed_cpus()
    with pytest.raises(ValueError, match="only adds contention"):
        Stage("too-many", rt_fns.double, kind="cpu", config=StageConfig(workers=len(cpus) + 1))
    with pytest.raises(ValueError, match="not all usable"):
        Stage("bad-cpu", rt_fns.double, kind="cpu", config=StageConfig(cpus=[max(cpus) + 1000]))
    with pytest.raises(TypeError, match="picklable"):
        Stage("lambda", lambda x: x, kind="cpu", config=StageConfig())


def test_errors_cross_the_pipe_as_themselves_and_a_deadline_terminates_busy_workers() -> None:
    with Stage("remote", rt_fns.fail_on_three, kind="cpu", config=StageConfig(workers=1)) as stage:
        with pytest.raises(StageError) as caught:
            list(stage.map(range(6)))
        assert isinstance(caught.value.cause, ValueError) and caught.value.unprocessed == [3, 4, 5]
        assert any("rt_fns.py" in note for note in caught.value.cause.__notes__)  # the worker's traceback
        assert list(stage.map([7, 8])) == [7, 8]  # the stage keeps working after a failed call

    with Stage("hang", rt_fns.sleep_then_echo, kind="cpu", config=StageConfig(workers=1)) as stage:
        pid_before = stage._processes.workers[0].pid  # type: ignore[union-attr]
        started = time.monotonic()
        with pytest.raises(StageTimeout, match="deadline") as timed_out:
            list(stage.map([(0.0, 1), (30.0, 2), (0.0, 3)], deadline=Deadline.after(0.3)))
        assert time.monotonic() - started < 3.0
        assert timed_out.value.unprocessed == [(30.0, 2), (0.0, 3)]
        deadline = time.monotonic() + 5
        while _alive(pid_before) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not _alive(pid_before)  # the busy worker was terminated, not left computing
        assert list(stage.map([(0.0, 4)])) == [4]  # and replaced on the next call


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:  # noqa: PTH123
            return stat.read().split(") ")[1][0] not in "ZX"
    except FileNotFoundError:
        return False
