"""A submitted streaming job seen from Python: its id, its status, its metrics, and the JVM that runs it.

The job runner (:mod:`pipelines.jobs.compute`) polls a :class:`RunningJob` while it commits finished part files; this
module keeps everything Flink-specific about that loop here, so the job wiring reads as plain steps.

* Status: the local per-job mini-cluster shuts down as soon as its job ends, after which asking for the status fails;
  the job's result then tells whether it finished or failed (:meth:`RunningJob.status`).
* Metrics come from the mini-cluster's REST endpoint (:mod:`pipelines.flink.monitor`), on a port picked per job.
* The JVM: PyFlink starts one gateway JVM per Python process. A killed attempt's JVM exits by itself when its parent
  dies (the gateway watches its stdin); should it still run, it must not write into the run folder beside the restarted
  job, so :func:`stop_orphaned_jvm` waits a little, then kills it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.codegen.flink_sql import JobSql
from pipelines.flink.checkpoints import checkpoint_configuration
from pipelines.flink.environment import FlinkOptions, create_table_environment
from pipelines.flink.job import flink_error, submit_job
from pipelines.flink.monitor import JobMetrics, JobMonitor, free_port, rest_configuration
from pipelines.flink.parse_once import prepare_parse_once

#: How long a restart waits for the JVM of a killed attempt to exit by itself before killing it.
ORPHAN_JVM_GRACE_SECONDS = 15.0
TERMINAL_STATES = frozenset({"FINISHED", "FAILED", "CANCELED"})


@dataclass
class RunningJob:
    """A job submitted by :func:`start_job`; poll :meth:`status` and :meth:`sample` until the status is terminal."""

    job_id: str
    jvm_pid: int | None
    _client: Any
    _result: Any
    _monitor: JobMonitor

    def status(self) -> str:
        """RUNNING, FINISHED, …; raises :class:`~pipelines.flink.job.FlinkJobError` with Flink's message on failure."""
        try:
            return str(self._client.get_job_status().result()).rsplit(".", 1)[-1]
        except Exception:  # py4j: the mini-cluster is gone, the job has ended
            pass
        try:
            self._result.wait()
        except Exception as error:  # py4j wraps Java exceptions; keep Flink's message, drop the Java stack
            raise flink_error(error) from error
        return "FINISHED"

    def sample(self) -> JobMetrics | None:
        """The job's metrics now (lines read, watermark), or None when the REST endpoint does not answer."""
        return self._monitor.sample()


def start_job(job_sql: JobSql, options: FlinkOptions, restore: Path | None) -> RunningJob:
    """Submit ``job_sql`` (restored from the checkpoint ``restore`` when given) without waiting for it."""
    port = free_port()
    job_sql, options = prepare_parse_once(job_sql, options)
    env = create_table_environment(options)
    config = env.get_config()
    for key, value in {**checkpoint_configuration(restore), **rest_configuration(port)}.items():
        config.set(key, value)
    result = submit_job(env, job_sql)
    client = result.get_job_client()
    job_id = str(client.get_job_id())
    return RunningJob(job_id, gateway_jvm_pid(), client, result, JobMonitor(port, job_id))


def gateway_jvm_pid() -> int | None:
    """The pid of the JVM PyFlink started for this process (its gateway server), if any."""
    import psutil

    for child in psutil.Process().children(recursive=True):
        try:
            if "java" in child.name():
                return child.pid
        except psutil.Error:
            continue
    return None


def stop_orphaned_jvm(pid: int) -> None:
    """Wait for the gateway JVM ``pid`` of a killed process to exit; kill it after :data:`ORPHAN_JVM_GRACE_SECONDS`."""
    import psutil

    try:
        process = psutil.Process(pid)
        if "PythonGatewayServer" not in " ".join(process.cmdline()):
            return
        process.wait(timeout=ORPHAN_JVM_GRACE_SECONDS)
    except psutil.NoSuchProcess:
        return
    except psutil.TimeoutExpired:
        process.kill()
        process.wait(timeout=ORPHAN_JVM_GRACE_SECONDS)
