"""Deadlines and retry delays: absolute deadlines on an injectable clock; exponential backoff with bounded jitter."""

from __future__ import annotations

import random

import pytest

from pipelines.runtime import Deadline, DeadlineExceeded, LimitExceeded, ManualClock, RetryPolicy, TransientError


def test_deadline_counts_down_and_names_what_timed_out() -> None:
    clock = ManualClock()
    deadline = Deadline.after(2.0, clock=clock)
    assert deadline.remaining() == 2.0 and not deadline.expired
    clock.advance(1.5)
    assert deadline.remaining() == pytest.approx(0.5)
    deadline.check("commit batch 7")
    clock.advance(0.5)
    assert deadline.expired and deadline.remaining() == 0
    with pytest.raises(DeadlineExceeded, match="commit batch 7") as caught:
        deadline.check("commit batch 7")
    assert isinstance(caught.value, TimeoutError)


def test_never_and_earliest() -> None:
    clock = ManualClock()
    never = Deadline.never(clock=clock)
    assert never.remaining() is None and not never.expired and never.wait_time(3.0) == 3.0
    soon = Deadline.after(1.0, clock=clock)
    assert never.earliest(soon) is soon and soon.earliest(never) is soon and soon.earliest(None) is soon
    assert soon.wait_time(3.0) == 1.0
    assert Deadline.within(None, clock=clock).is_never


def test_backoff_doubles_up_to_the_cap_with_equal_jitter() -> None:
    policy = RetryPolicy(base_delay=0.1, max_delay=1.0, rng=random.Random(7))
    for attempt, ceiling in [(1, 0.1), (2, 0.2), (3, 0.4), (4, 0.8), (5, 1.0), (9, 1.0)]:
        delays = [policy.delay(attempt) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert max(delays) - min(delays) > ceiling / 4  # jitter really spreads callers out
    exact = RetryPolicy(base_delay=0.1, max_delay=1.0, jitter=False)
    assert [exact.delay(a) for a in (1, 2, 3, 4, 5)] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0])


def test_only_transient_errors_are_retried_and_only_up_to_the_limit() -> None:
    policy = RetryPolicy(max_attempts=3)
    assert policy.should_retry(TransientError("busy"), 1)
    assert not policy.should_retry(ConnectionResetError(), 1)  # a library error is re-raised as Transient by its caller
    assert not policy.should_retry(DeadlineExceeded("late"), 1)  # a passed deadline is final, though a TimeoutError
    assert not policy.should_retry(TransientError("busy"), 3)
    assert not policy.should_retry(ValueError("bad row"), 1)
    assert not RetryPolicy.none().should_retry(TransientError(), 1)
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)


def test_a_terminal_error_is_never_retried_even_when_retry_on_names_its_builtin_type() -> None:
    wide = RetryPolicy(max_attempts=3, retry_on=(TimeoutError, ValueError))
    assert wide.should_retry(TimeoutError("socket"), 1)
    assert not wide.should_retry(DeadlineExceeded("late"), 1)  # a TimeoutError, but Terminal
    assert not wide.should_retry(LimitExceeded("more tokens than the burst"), 1)  # a ValueError, but Terminal
