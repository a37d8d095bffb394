"""Thread stages: ordered results, bounded in-flight input, retries, terminal errors keeping their items, deadlines."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator

import pytest

from pipelines.runtime import (
    Deadline,
    HybridLimiter,
    RetryPolicy,
    Stage,
    StageConfig,
    StageError,
    StageTimeout,
    TransientError,
)

FAST_RETRY = RetryPolicy(max_attempts=4, base_delay=0.001, max_delay=0.004, rng=random.Random(1))


def test_results_come_back_in_input_order() -> None:
    def jitter_double(x: int) -> int:
        time.sleep(random.Random(x).uniform(0, 0.003))
        return 2 * x

    with Stage("order", jitter_double, kind="thread", config=StageConfig(workers=4)) as stage:
        assert list(stage.map(range(200))) == [2 * x for x in range(200)]
        summary = stage.metrics.to_dict()
    assert summary["items"] == 200 and summary["errors"] == 0 and summary["in_flight"] == 0
    assert summary["latency_p50_s"] is not None and summary["latency_p99_s"] >= summary["latency_p50_s"]


def test_input_is_read_lazily_and_in_flight_stays_bounded() -> None:
    taken = 0

    def source() -> Iterator[int]:
        nonlocal taken
        for i in range(1_000):
            taken += 1
            yield i

    config = StageConfig(workers=2, queue_size=3)
    with Stage("bounded", lambda x: x, kind="thread", config=config) as stage:
        results = stage.map(source())
        first = next(results)
        assert first == 0
        assert taken <= stage.max_in_flight + 1 == 6  # the consumer has not asked for more: the producer waits
        for _ in range(100):
            next(results)
        assert taken - 101 <= stage.max_in_flight
        assert stage.metrics.max_queue_depth <= stage.max_in_flight
        results.close()


def test_transient_errors_are_retried_then_succeed() -> None:
    attempts: dict[int, int] = {}
    lock = threading.Lock()

    def flaky(x: int) -> int:
        with lock:
            attempts[x] = attempts.get(x, 0) + 1
            if attempts[x] <= 2 and x % 3 == 0:
                raise TransientError(f"busy on {x}")
        return x

    with Stage("flaky", flaky, kind="thread", config=StageConfig(workers=3), retry=FAST_RETRY) as stage:
        assert list(stage.map(range(30))) == list(range(30))
    assert stage.metrics.retries == 2 * 10
    assert all(attempts[x] == 3 for x in range(0, 30, 3))


def test_a_terminal_error_stops_the_stage_and_keeps_the_unprocessed_items() -> None:
    def fail_on_13(x: int) -> int:
        if x == 13:
            raise ValueError("row 13 has no user_id")
        return x

    items = list(range(40))
    done: list[int] = []
    with (
        Stage("commit", fail_on_13, kind="thread", config=StageConfig(workers=3), retry=FAST_RETRY) as stage,
        pytest.raises(StageError) as caught,
    ):
        done.extend(stage.map(items))
    error = caught.value
    assert error.stage == "commit" and error.item_index == 13
    assert isinstance(error.cause, ValueError) and isinstance(error.__cause__, ValueError)
    assert "commit" in str(error) and "item 13" in str(error) and "no user_id" in str(error)
    assert done == list(range(13))
    assert error.unprocessed == list(range(13, 40))  # nothing lost, in order, the failing item first
    assert list(error.rest) == []
    assert stage.metrics.errors == 1 and stage.metrics.retries == 0  # a ValueError is terminal: not retried


def test_a_one_shot_iterator_keeps_its_rest() -> None:
    def fail_on_2(x: int) -> int:
        if x == 2:
            raise ValueError("boom")
        return x

    with (
        Stage("iter", fail_on_2, kind="thread", config=StageConfig(workers=1, queue_size=1)) as stage,
        pytest.raises(StageError) as caught,
    ):
        list(stage.map(iter(range(10))))
    error = caught.value
    assert error.unprocessed[0] == 2
    assert error.unprocessed + list(error.rest) == list(range(2, 10))


def test_exhausted_retries_surface_the_last_error() -> None:
    def always_busy(x: int) -> int:
        raise TransientError("redis refused")

    with (
        Stage("busy", always_busy, kind="thread", config=StageConfig(workers=1), retry=FAST_RETRY) as stage,
        pytest.raises(StageError, match="redis refused") as caught,
    ):
        list(stage.map([1, 2]))
    assert caught.value.unprocessed == [1, 2] and caught.value.item_index == 0
    assert stage.metrics.retries >= 3  # item 0 used all 3 retries (item 1 may have begun retrying before the stop)


def test_the_deadline_cancels_outstanding_work_with_a_clear_timeout() -> None:
    release = threading.Event()

    def slow(x: int) -> int:
        release.wait(5)
        return x

    with Stage("slow", slow, kind="thread", config=StageConfig(workers=2, queue_size=4)) as stage:
        started = time.monotonic()
        with pytest.raises(StageTimeout) as caught:
            list(stage.map(range(10), deadline=Deadline.after(0.2)))
        waited = time.monotonic() - started
        release.set()
    assert 0.2 <= waited < 1.0
    error = caught.value
    assert isinstance(error, TimeoutError) and isinstance(error, StageError)
    assert "slow" in str(error) and "deadline" in str(error)
    assert error.unprocessed == list(range(10))
    assert stage.metrics.timeouts == 1


def test_per_item_timeout_from_config() -> None:
    def maybe_hang(x: int) -> int:
        if x == 4:
            time.sleep(0.5)
        return x

    config = StageConfig(workers=2, timeout_s=0.1)
    with (
        Stage("per-item", maybe_hang, kind="thread", config=config) as stage,
        pytest.raises(StageTimeout, match="item 4") as caught,
    ):
        list(stage.map(range(8)))
    assert caught.value.item_index == 4 and caught.value.unprocessed == list(range(4, 8))


def test_the_stage_limiter_paces_items_by_their_tokens() -> None:
    limiter = HybridLimiter(rate=2_000, burst=10, name="pace")
    config = StageConfig(workers=4)
    with Stage("paced", len, kind="thread", config=config, tokens=len, limiter=limiter) as stage:
        started = time.monotonic()
        assert list(stage.map([[0] * 10] * 21)) == [10] * 21
        elapsed = time.monotonic() - started
    assert elapsed >= 200 / 2_000 * 0.9  # 210 tokens, 10 free: 0.1 s at 2 000 tokens/s
    assert stage.metrics.limiter_wait_s > 0 and limiter.stats.acquired == 21


def test_oversized_items_are_rejected_as_terminal() -> None:
    config = StageConfig(workers=1, rate=100, burst=5)
    with (
        Stage("too-big", len, kind="thread", config=config, tokens=len) as stage,
        pytest.raises(StageError, match="burst is 5") as caught,
    ):
        list(stage.map([[1], [1] * 6, [1]]))
    assert caught.value.item_index == 1 and stage.metrics.limiter_rejections == 1 and stage.metrics.retries == 0


def test_configuration_errors_name_the_stage() -> None:
    with pytest.raises(ValueError, match="kind"):
        Stage("x", len, kind="process", config=StageConfig())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="async def"):
        Stage("x", len, kind="async", config=StageConfig())
    with pytest.raises(RuntimeError, match="not started"):
        Stage("x", len, kind="thread", config=StageConfig()).map([1])
