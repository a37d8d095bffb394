"""async stages: coroutines on a stage-owned loop, the concurrency cap, retries and cancellation at the deadline."""

from __future__ import annotations

import asyncio
import random
import time

import pytest

from pipelines.runtime import Deadline, RetryPolicy, Stage, StageConfig, StageError, StageTimeout, TransientError


def test_results_in_order_and_concurrency_capped() -> None:
    inside = 0
    peak = 0

    async def fetch(x: int) -> int:
        nonlocal inside, peak
        inside += 1
        peak = max(peak, inside)
        await asyncio.sleep(random.Random(x).uniform(0, 0.004))
        inside -= 1
        return x * 10

    with Stage("fetch", fetch, kind="async", config=StageConfig(workers=16, concurrency=3)) as stage:
        assert list(stage.map(range(60))) == [x * 10 for x in range(60)]
    assert 1 < peak <= 3


def test_transient_errors_are_retried() -> None:
    calls: dict[int, int] = {}

    async def flaky(x: int) -> int:
        calls[x] = calls.get(x, 0) + 1
        if calls[x] == 1:
            raise TransientError("503")
        return x

    retry = RetryPolicy(max_attempts=3, base_delay=0.001, max_delay=0.002)
    with Stage("flaky-async", flaky, kind="async", config=StageConfig(workers=4), retry=retry) as stage:
        assert list(stage.map(range(10))) == list(range(10))
    assert stage.metrics.retries == 10


def test_a_terminal_error_keeps_unprocessed_items() -> None:
    async def check(x: int) -> int:
        if x == 5:
            raise KeyError("feature view missing")
        return x

    with (
        Stage("checks", check, kind="async", config=StageConfig(workers=2)) as stage,
        pytest.raises(StageError, match="feature view missing") as caught,
    ):
        list(stage.map(list(range(9))))
    assert caught.value.item_index == 5 and caught.value.unprocessed == [5, 6, 7, 8]


def test_the_deadline_cancels_outstanding_coroutines() -> None:
    cancelled = 0

    async def slow(x: int) -> int:
        nonlocal cancelled
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled += 1
            raise
        return x

    with Stage("slow-async", slow, kind="async", config=StageConfig(workers=4)) as stage:
        started = time.monotonic()
        with pytest.raises(StageTimeout):
            list(stage.map(range(6), deadline=Deadline.after(0.2)))
        assert time.monotonic() - started < 2.0
        deadline = time.monotonic() + 2
        while cancelled < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
    assert cancelled == 4  # the four running coroutines were cancelled, not abandoned
