"""The runtime's error types: the retry decision is in the type; a stage failure is wrapped once, with its data.

:class:`Transient` and :class:`Terminal` are mix-ins that decide retries: :class:`~pipelines.runtime.RetryPolicy`
retries an error only when it is a ``Transient`` (a busy service, a dropped connection); everything else, a
``DeadlineExceeded`` included, stops at once. The platform's own errors (:mod:`pipelines.errors`) mix them in; a
library error worth retrying is re-raised as :class:`TransientError` ``from`` it. A :class:`StageError` is the one
error a caller of ``Stage.map`` sees when the stage stops: it names the stage and the item, chains the cause, and
carries every item that was not done, so nothing is lost.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pipelines.runtime.deadline import DeadlineExceeded
from pipelines.runtime.kinds import Terminal, Transient

__all__ = ["StageError", "StageStopped", "StageTimeout", "Terminal", "Transient", "TransientError"]


class TransientError(Transient, Exception):
    """A transient failure with no more specific type (raise it ``from`` the library error)."""


class StageError(Terminal, RuntimeError):
    """A stage stopped. ``unprocessed`` holds the items not done, in input order (the failing one first);
    ``rest`` the input the stage never took (empty unless the input was a one-shot iterator of unknown length).

    Re-run ``list(err.unprocessed) + list(err.rest)`` to lose nothing; results already yielded are not in it.
    """

    def __init__(
        self,
        stage: str,
        item_index: int | None,
        cause: BaseException | None,
        unprocessed: list[Any],
        rest: Iterator[Any] | None = None,
        message: str | None = None,
    ) -> None:
        self.stage = stage
        self.item_index = item_index
        self.cause = cause
        self.unprocessed = unprocessed
        self.rest: Iterator[Any] = rest if rest is not None else iter(())
        where = f"item {item_index}" if item_index is not None else "no item"
        text = message or f"stage {stage!r} failed at {where}: {type(cause).__name__}: {cause}"
        super().__init__(f"{text} ({len(unprocessed)} item(s) unprocessed, kept in StageError.unprocessed)")


class StageTimeout(StageError, DeadlineExceeded):  # noqa: N818
    """A stage call's deadline passed: outstanding work was cancelled. Both a StageError and a TimeoutError."""


class StageStopped(StageError):  # noqa: N818
    """The stage was stopped (``Stage.stop()`` or SIGTERM) before all input was processed; nothing was lost."""
