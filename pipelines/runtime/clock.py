"""Clocks: the one seam through which the runtime reads time and sleeps, so tests can fake it.

The limiter, deadlines and retries never call :mod:`time` directly; they take a :class:`Clock`. Production code uses
:data:`SYSTEM_CLOCK` (``time.monotonic``); tests use :class:`ManualClock`, whose sleeps advance virtual time at once, so
a test of "10 000 acquisitions at 1 000/s" runs in milliseconds and gives the same answer on every machine.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Protocol


class Clock(Protocol):
    """Monotonic seconds plus the two ways of waiting (blocking for threads, awaitable for asyncio)."""

    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...

    async def sleep_async(self, seconds: float) -> None: ...


class SystemClock:
    """The real monotonic clock."""

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    async def sleep_async(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class ManualClock:
    """Virtual time for tests: ``sleep`` advances the clock instead of waiting; ``advance`` moves it by hand.

    ``sleep_async`` also yields once to the event loop, so concurrent tasks interleave as they would for real.
    """

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._lock = threading.Lock()
        self.slept: float = 0.0

    def monotonic(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += max(0.0, seconds)

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self._now += max(0.0, seconds)
            self.slept += max(0.0, seconds)

    async def sleep_async(self, seconds: float) -> None:
        self.sleep(seconds)
        await asyncio.sleep(0)


SYSTEM_CLOCK: Clock = SystemClock()
