"""The concurrency core: worker stages (pinned processes, threads, asyncio), the hybrid limiter, deadlines, retries.

Every Python-side step of the platform (Delta commits, online loading, backfill commits) runs as a
:class:`Stage`. See ``docs/runtime.md`` for the why, the configuration keys and the metric names.

Modules, in the order a call passes through them: ``config`` (StageConfig) → ``stage`` (Stage.map: ordering,
backpressure, deadlines, errors, stop) → ``limiter`` (HybridLimiter) → ``retry`` (RetryPolicy) → ``workers`` (thread,
process and asyncio pools, shutdown) → ``metrics`` (Prometheus + StageMetrics); ``deadline``, ``clock``, ``errors`` and
``signals`` are the small shared pieces.

Imports are lazy (PEP 562): a spawned worker process imports only the small module it runs, not pydantic and
prometheus-client, which keeps worker start-up short.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipelines.runtime.clock import SYSTEM_CLOCK, Clock, ManualClock, SystemClock
    from pipelines.runtime.config import StageConfig
    from pipelines.runtime.deadline import Deadline, DeadlineExceeded
    from pipelines.runtime.errors import StageError, StageStopped, StageTimeout, Terminal, Transient, TransientError
    from pipelines.runtime.limiter import HybridLimiter, LimiterStats, LimitExceeded, RateLimited
    from pipelines.runtime.metrics import StageMetrics
    from pipelines.runtime.retry import RetryPolicy
    from pipelines.runtime.signals import stop_on_sigterm
    from pipelines.runtime.stage import Stage, allowed_cpus
    from pipelines.runtime.workers import WorkerCrashed

_WHERE = {
    "SYSTEM_CLOCK": "pipelines.runtime.clock",
    "Clock": "pipelines.runtime.clock",
    "ManualClock": "pipelines.runtime.clock",
    "SystemClock": "pipelines.runtime.clock",
    "StageConfig": "pipelines.runtime.config",
    "Deadline": "pipelines.runtime.deadline",
    "DeadlineExceeded": "pipelines.runtime.deadline",
    "StageError": "pipelines.runtime.errors",
    "StageStopped": "pipelines.runtime.errors",
    "StageTimeout": "pipelines.runtime.errors",
    "Terminal": "pipelines.runtime.errors",
    "Transient": "pipelines.runtime.errors",
    "TransientError": "pipelines.runtime.errors",
    "HybridLimiter": "pipelines.runtime.limiter",
    "LimiterStats": "pipelines.runtime.limiter",
    "LimitExceeded": "pipelines.runtime.limiter",
    "RateLimited": "pipelines.runtime.limiter",
    "StageMetrics": "pipelines.runtime.metrics",
    "RetryPolicy": "pipelines.runtime.retry",
    "stop_on_sigterm": "pipelines.runtime.signals",
    "Stage": "pipelines.runtime.stage",
    "allowed_cpus": "pipelines.runtime.stage",
    "WorkerCrashed": "pipelines.runtime.workers",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "SYSTEM_CLOCK",
    "Clock",
    "Deadline",
    "DeadlineExceeded",
    "HybridLimiter",
    "LimitExceeded",
    "LimiterStats",
    "ManualClock",
    "RateLimited",
    "RetryPolicy",
    "Stage",
    "StageConfig",
    "StageError",
    "StageMetrics",
    "StageStopped",
    "StageTimeout",
    "SystemClock",
    "Terminal",
    "Transient",
    "TransientError",
    "WorkerCrashed",
    "allowed_cpus",
    "stop_on_sigterm",
]
