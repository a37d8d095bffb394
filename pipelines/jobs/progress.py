"""Progress callbacks the jobs report through (the CLI prints them; tests and libraries pass nothing)."""

from __future__ import annotations

from collections.abc import Callable

#: One line of progress: what just happened ("delta: batch 3: user_txn_stats_v1 +1,204").
Progress = Callable[[str], None]


def silent(_message: str) -> None:
    """The default progress callback: says nothing."""
