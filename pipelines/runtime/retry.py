"""Retries: which errors are worth another attempt, and how long to wait before it.

The retry decision lives in the error's type: only :class:`~pipelines.runtime.errors.Transient` errors are retried
(``retry_on``); everything else is terminal and stops the stage at once. A ``TimeoutError`` is not transient by
itself: a passed deadline (``DeadlineExceeded``) must not be retried, and a client's socket time-out is re-raised as a
``TransientError`` by the code that knows it is safe to repeat.
Delays grow exponentially (``base_delay * 2**(attempt-1)``, capped at ``max_delay``) with "equal jitter": half the delay
is fixed, half is random, so retrying callers spread out but never hammer a service sooner than half the backoff.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from pipelines.runtime.kinds import Terminal, Transient


@dataclass(frozen=True)
class RetryPolicy:
    """``max_attempts`` counts the first call (``max_attempts=1`` means no retry).

    ``rng`` is injectable for deterministic tests.
    """

    max_attempts: int = 5
    base_delay: float = 0.05
    max_delay: float = 2.0
    jitter: bool = True
    retry_on: tuple[type[BaseException], ...] = (Transient,)
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts}")
        if self.base_delay < 0 or self.max_delay < self.base_delay:
            raise ValueError(f"need 0 <= base_delay <= max_delay, got {self.base_delay}, {self.max_delay}")

    @classmethod
    def none(cls) -> RetryPolicy:
        return cls(max_attempts=1)

    def is_transient(self, error: BaseException) -> bool:
        """Worth another attempt: one of ``retry_on`` and never :class:`Terminal` (a passed deadline stays passed
        even when a caller widens ``retry_on`` to every ``TimeoutError``)."""
        return isinstance(error, self.retry_on) and not isinstance(error, Terminal)

    def should_retry(self, error: BaseException, attempt: int) -> bool:
        """After failed attempt number ``attempt`` (1-based): try again?"""
        return attempt < self.max_attempts and self.is_transient(error)

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1-based) before the next one."""
        ceiling = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        if not self.jitter:
            return ceiling
        return ceiling / 2 + self.rng.uniform(0, ceiling / 2)
