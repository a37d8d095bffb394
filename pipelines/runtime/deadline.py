"""Deadlines: an absolute point in time that every stage call carries from its caller down to each wait.

A deadline is absolute (not a timeout) so it can be handed through limiter waits, retries and worker calls without
anyone re-adding elapsed time. ``Deadline.never()`` stands for "no limit" and costs nothing to check.

    deadline = Deadline.after(30.0)
    for result in stage.map(batches, deadline=deadline): ...
    deadline.check("commit user_txn_stats_v1")   # raises DeadlineExceeded naming what timed out
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from pipelines.runtime.clock import SYSTEM_CLOCK, Clock
from pipelines.runtime.kinds import Terminal


class DeadlineExceeded(Terminal, TimeoutError):  # noqa: N818 (the API's name)
    """A deadline passed before the work named in the message was done. A ``TimeoutError``, so generic handlers work."""


@dataclass(frozen=True)
class Deadline:
    """An absolute monotonic instant (``at``; ``inf`` for never) on a given clock."""

    at: float
    clock: Clock = field(default=SYSTEM_CLOCK, compare=False, repr=False)

    @classmethod
    def after(cls, seconds: float, *, clock: Clock | None = None) -> Deadline:
        clock = clock or SYSTEM_CLOCK
        return cls(clock.monotonic() + seconds, clock)

    @classmethod
    def never(cls, *, clock: Clock | None = None) -> Deadline:
        return cls(math.inf, clock or SYSTEM_CLOCK)

    @classmethod
    def within(cls, seconds: float | None, *, clock: Clock | None = None) -> Deadline:
        """``after(seconds)``, or ``never()`` when ``seconds`` is None (convenient for optional config timeouts)."""
        return cls.never(clock=clock) if seconds is None else cls.after(seconds, clock=clock)

    @property
    def is_never(self) -> bool:
        return math.isinf(self.at)

    def remaining(self) -> float | None:
        """Seconds left (never negative), or None when there is no deadline."""
        if self.is_never:
            return None
        return max(0.0, self.at - self.clock.monotonic())

    @property
    def expired(self) -> bool:
        return not self.is_never and self.clock.monotonic() >= self.at

    def check(self, what: str) -> None:
        """Raise :class:`DeadlineExceeded` naming ``what`` if the deadline has passed."""
        if self.expired:
            raise DeadlineExceeded(f"deadline exceeded: {what}")

    def earliest(self, other: Deadline | None) -> Deadline:
        """The sooner of two deadlines (``None`` means no other deadline)."""
        if other is None or other.at >= self.at:
            return self
        return other

    def wait_time(self, wanted: float) -> float:
        """``wanted`` seconds, cut to what is left (a wait never outlives its deadline)."""
        left = self.remaining()
        return wanted if left is None else min(wanted, left)
