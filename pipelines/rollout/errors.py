"""Errors of the rollout layer."""

from __future__ import annotations

from pipelines.errors import PlatformError, Terminal, Transient, UsageError


class RolloutConflictError(PlatformError, Transient):
    """Someone else changed the rollout between our read and our write (compare-and-set failed): read and retry."""


class RolloutRefusedError(UsageError):
    """A rollout command that cannot be carried out as asked (no such rollout, one already running, a wrong major)."""


class RolloutStoreError(PlatformError, Terminal):
    """The rollout store cannot be opened or read (a corrupt file, a Redis that refuses)."""
