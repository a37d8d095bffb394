"""SIGTERM → graceful stop: running stages stop taking input, drain within their timeout, then raise StageStopped.

    with Stage(...) as stage, stop_on_sigterm(stage):
        for result in stage.map(items): ...

The handler only sets each stage's stop flag (signal-safe); ``map`` notices within 50 ms, hands back what finishes
within ``drain_timeout_s`` and raises :class:`~pipelines.runtime.errors.StageStopped` carrying the unprocessed items;
leaving the ``with`` then terminates stuck workers. The previous handler is restored on exit. Signal handlers can
only be installed from the main thread; elsewhere this raises ``ValueError`` (Python's rule).
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any, Protocol


class Stoppable(Protocol):
    def stop(self) -> None: ...


@contextmanager
def stop_on_sigterm(*stages: Stoppable) -> Iterator[None]:
    """Install a SIGTERM handler that stops ``stages`` for the duration of the block."""

    def handler(signum: int, frame: FrameType | None) -> None:
        for stage in stages:
            stage.stop()

    previous: Any = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
