"""The concurrency core: worker stages (pinned processes, threads, asyncio), the hybrid limiter, deadlines, retries.

Every Python-side step of the platform (Delta commits, online loading, backfills, data checks) runs as a
:class:`Stage`. See ``docs/runtime.md`` for the why, the configuration keys and the metric names.

Modules, in the order a call passes through them: ``config`` (StageConfig) → ``stage`` (Stage.map: ordering,
backpressure, deadlines, errors, stop) → ``limiter`` (HybridLimiter) → ``retry`` (RetryPolicy) → ``workers`` (thread,
process and asyncio pools, shutdown) → ``metrics`` (Prometheus + StageMetrics); ``deadline``, ``clock``, ``errors`` and
``signals`` are the small shared pieces.
"""

from pipelines.runtime.clock import SYSTEM_CLOCK, Clock, ManualClock, SystemClock
from pipelines.runtime.config import StageConfig
from pipelines.runtime.deadline import Deadline, DeadlineExceeded
from pipelines.runtime.errors import StageError, StageStopped, StageTimeout, TransientError
from pipelines.runtime.limiter import HybridLimiter, LimiterStats, LimitExceeded, RateLimited
from pipelines.runtime.metrics import StageMetrics
from pipelines.runtime.retry import RetryPolicy
from pipelines.runtime.signals import stop_on_sigterm
from pipelines.runtime.stage import Stage, allowed_cpus
from pipelines.runtime.workers import WorkerCrashed

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
    "TransientError",
    "WorkerCrashed",
    "allowed_cpus",
    "stop_on_sigterm",
]
