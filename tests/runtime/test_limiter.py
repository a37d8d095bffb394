"""HybridLimiter: exact rate under a fake clock, burst rejection, deadlines, cancellation, and the concurrency cap."""

from __future__ import annotations

import asyncio
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.runtime import Deadline, DeadlineExceeded, HybridLimiter, LimitExceeded, ManualClock, RateLimited


@pytest.mark.parametrize(("rate", "burst"), [(1_000, 1), (1_000, 50), (10_000, 100), (50_000, 500)])
def test_rate_is_exact_under_a_fake_clock(rate: float, burst: int) -> None:
    clock = ManualClock()
    limiter = HybridLimiter(rate, burst, clock=clock)
    n = 20_000
    for _ in range(n):
        with limiter.acquire():
            pass
    # The first `burst` tokens are free; every later one costs exactly 1/rate seconds.
    assert clock.monotonic() == pytest.approx((n - burst) / rate, rel=1e-9)
    stats = limiter.stats
    assert stats.acquired == n
    assert stats.wait_s == pytest.approx((n - burst) / rate, rel=1e-9)


def test_idle_time_refills_up_to_the_burst_only() -> None:
    clock = ManualClock()
    limiter = HybridLimiter(100, 10, clock=clock)
    with limiter.acquire(10):
        pass
    clock.advance(60)  # a minute idle saves at most `burst` tokens
    with limiter.acquire(10):
        pass
    assert clock.slept == 0
    with limiter.acquire(5):
        pass
    assert clock.slept == pytest.approx(0.05)


def test_weighted_acquisitions_cost_their_tokens() -> None:
    clock = ManualClock()
    limiter = HybridLimiter(1_000, 500, clock=clock)
    for _ in range(10):
        with limiter.acquire(tokens=500):
            pass
    assert clock.monotonic() == pytest.approx(4.5)


def test_more_tokens_than_the_burst_fail_at_once() -> None:
    clock = ManualClock()
    limiter = HybridLimiter(1_000, 100, clock=clock, name="online-load")
    with pytest.raises(LimitExceeded, match="online-load.*101 tokens.*burst is 100"), limiter.acquire(101):
        pass
    assert clock.monotonic() == 0 and limiter.stats.rejected == 1


def test_a_wait_longer_than_the_deadline_fails_at_once_and_keeps_the_tokens() -> None:
    clock = ManualClock()
    limiter = HybridLimiter(10, 10, clock=clock)
    with limiter.acquire(10):
        pass
    with pytest.raises(RateLimited) as caught, limiter.acquire(5, deadline=Deadline.after(0.1, clock=clock)):
        pass
    assert isinstance(caught.value, DeadlineExceeded | TimeoutError)
    assert caught.value.retry_after == pytest.approx(0.5)
    assert clock.monotonic() == 0  # it did not sleep in vain
    with limiter.acquire(5, deadline=Deadline.after(0.6, clock=clock)):  # the rejected request took nothing
        pass
    assert clock.monotonic() == pytest.approx(0.5)


def test_async_rate_is_exact_under_a_fake_clock() -> None:
    clock = ManualClock()
    limiter = HybridLimiter(2_000, 20, clock=clock)

    async def worker() -> None:
        for _ in range(500):
            async with limiter.acquire_async():
                pass

    async def main() -> None:
        await asyncio.gather(*(worker() for _ in range(4)))

    asyncio.run(main())
    assert clock.monotonic() == pytest.approx((2_000 - 20) / 2_000, rel=1e-9)


def test_a_cancelled_async_wait_gives_its_tokens_and_slot_back() -> None:
    limiter = HybridLimiter(10, 1, max_concurrency=1)

    async def main() -> None:
        async with limiter.acquire_async():  # bucket now empty; next token in 0.1 s
            pass
        waiting = asyncio.create_task(limiter.acquire_async().__aenter__())
        await asyncio.sleep(0.01)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert limiter.stats.in_use == 0
        holder = limiter.acquire_async()
        await holder.__aenter__()
        blocked = asyncio.create_task(limiter.acquire_async().__aenter__())
        await asyncio.sleep(0.01)
        blocked.cancel()  # cancelled while queued for the slot
        with pytest.raises(asyncio.CancelledError):
            await blocked
        await holder.__aexit__(None, None, None)
        assert limiter.stats.in_use == 0

    asyncio.run(main())


def test_a_slot_wait_honours_the_deadline() -> None:
    limiter = HybridLimiter(None, max_concurrency=1, name="svc")
    with limiter.acquire():
        failed: list[BaseException] = []

        def other() -> None:
            try:
                with limiter.acquire(deadline=Deadline.after(0.05)):
                    pass
            except DeadlineExceeded as error:
                failed.append(error)

        thread = threading.Thread(target=other)
        thread.start()
        thread.join(5)
    assert len(failed) == 1 and "no concurrency slot" in str(failed[0])
    assert limiter.stats.in_use == 0 and limiter.stats.rejected == 1
    with limiter.acquire(deadline=Deadline.after(0.05)):  # the abandoned waiter did not keep the slot
        assert limiter.stats.in_use == 1


@settings(max_examples=60, deadline=None)
@given(
    cap=st.integers(1, 5),
    holds=st.lists(st.integers(0, 6), min_size=1, max_size=40),
    cancel_every=st.integers(2, 9),
)
def test_the_concurrency_cap_is_never_exceeded_async(cap: int, holds: list[int], cancel_every: int) -> None:
    """Random hold times (in event-loop turns) and random cancellations: never more than `cap` holders."""
    limiter = HybridLimiter(None, max_concurrency=cap)
    inside = 0
    peak = 0

    async def task(hold: int) -> None:
        nonlocal inside, peak
        async with limiter.acquire_async():
            inside += 1
            peak = max(peak, inside)
            try:
                for _ in range(hold):
                    await asyncio.sleep(0)
            finally:
                inside -= 1

    async def main() -> None:
        tasks = [asyncio.create_task(task(h)) for h in holds]
        await asyncio.sleep(0)
        for t in tasks[::cancel_every]:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(main())
    assert peak <= cap
    assert limiter.stats.in_use == 0


@settings(max_examples=15, deadline=None)
@given(cap=st.integers(1, 4), threads=st.integers(1, 8), spins=st.lists(st.integers(0, 300), min_size=8, max_size=8))
def test_the_concurrency_cap_is_never_exceeded_threads(cap: int, threads: int, spins: list[int]) -> None:
    limiter = HybridLimiter(None, max_concurrency=cap)
    lock = threading.Lock()
    inside = 0
    peak = 0

    def work(spin: int) -> None:
        nonlocal inside, peak
        for _ in range(20):
            with limiter.acquire():
                with lock:
                    inside += 1
                    peak = max(peak, inside)
                for _ in range(spin):
                    pass
                with lock:
                    inside -= 1

    pool = [threading.Thread(target=work, args=(spins[i],)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(10)
    assert peak <= cap
    assert limiter.stats.in_use == 0 and limiter.stats.acquired == 20 * threads


def test_threads_and_asyncio_share_one_cap() -> None:
    limiter = HybridLimiter(None, max_concurrency=2)
    lock = threading.Lock()
    inside = 0
    peak = 0

    def enter() -> None:
        nonlocal inside, peak
        with lock:
            inside += 1
            peak = max(peak, inside)

    def leave() -> None:
        nonlocal inside
        with lock:
            inside -= 1

    def thread_work() -> None:
        for _ in range(200):
            with limiter.acquire():
                enter()
                leave()

    async def coro_work() -> None:
        for _ in range(200):
            async with limiter.acquire_async():
                enter()
                await asyncio.sleep(0)
                leave()

    async def main() -> None:
        await asyncio.gather(*(coro_work() for _ in range(3)))

    pool = [threading.Thread(target=thread_work) for _ in range(3)]
    for t in pool:
        t.start()
    asyncio.run(main())
    for t in pool:
        t.join(10)
    assert peak <= 2 and limiter.stats.in_use == 0


def test_bad_limits_are_rejected() -> None:
    with pytest.raises(ValueError, match="rate"):
        HybridLimiter(0)
    with pytest.raises(ValueError, match="max_concurrency"):
        HybridLimiter(None, max_concurrency=0)
    with pytest.raises(ValueError, match="tokens"), HybridLimiter(10).acquire(0):
        pass
