"""StageConfig: how one stage runs (workers, pinning, rate, burst, concurrency, retries, timeouts).

A pydantic model so it nests in the project's :class:`~pipelines.config.Settings` and every field can be overridden
from the environment, e.g. ``FP_STAGES__ONLINE_LOAD__RATE=10000`` (see ``docs/runtime.md``). ``None`` means "the
default for this kind of stage": for ``cpu`` stages one worker per CPU this process may use; for ``thread`` and
``async`` stages :data:`DEFAULT_IO_WORKERS`.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_IO_WORKERS = 4


class StageConfig(BaseModel):
    """Per-stage knobs; all optional, all validated."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    workers: int | None = Field(None, ge=1, le=1024, description="Workers (processes, threads or coroutines).")
    pin: bool = Field(True, description="cpu stages: pin each worker process to one CPU with os.sched_setaffinity.")
    cpus: list[int] | None = Field(None, description="cpu stages: CPUs to use (default: all this process may use).")
    queue_size: int = Field(8, ge=0, le=1_000_000, description="Items waiting beyond the busy workers (backpressure).")
    rate: float | None = Field(None, gt=0, description="Token-bucket rate in tokens/s (None: unlimited).")
    burst: int | None = Field(None, ge=1, description="Token-bucket capacity (None: one second of rate).")
    concurrency: int | None = Field(None, ge=1, description="Calls in progress at once (None: the worker count).")
    retries: int = Field(5, ge=0, le=100, description="Retries of a transient error after the first attempt.")
    timeout_s: float | None = Field(None, gt=0, description="Deadline per item, from when a worker takes it.")
    drain_timeout_s: float = Field(10.0, ge=0, description="Shutdown: time to finish queued work before terminating.")
