"""A submitted streaming job seen from Python: its id, its status, its metrics, and the JVM that runs it.

The job runner (:mod:`pipelines.jobs.compute`) polls a :class:`RunningJob` while it commits finished part files; this
module keeps everything Flink-specific about that loop here, so the job wiring reads as plain steps.

* Status: the local per-job mini-cluster shuts down as soon as its job ends, after which asking for the status fails;
  the job's result then tells whether it finished or failed (:meth:`RunningJob.status`).
* Metrics come from the mini-cluster's REST endpoint (:mod:`pipelines.flink.monitor`), on a port picked per job.
* On a remote cluster (``options.cluster``) the cluster outlives the client: status, failure cause, metrics and
  cancellation all come from the cluster's REST API (:class:`~pipelines.flink.cluster.ClusterRest`). A job there may
  pass through RESTARTING (a lost TaskManager, resumed from the newest checkpoint by the restart strategy); that is not
  terminal, the run keeps polling.
* The JVM: PyFlink starts one gateway JVM per Python process. A killed attempt's JVM exits by itself when its parent
  dies (the gateway watches its stdin); should it still run, it must not write into the run folder beside the restarted
  job, so :func:`stop_orphaned_jvm` waits a little, then kills it.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.codegen.flink_sql import JobSql
from pipelines.flink.checkpoints import checkpoint_configuration
from pipelines.flink.cluster import TERMINAL_STATES, ClusterRest
from pipelines.flink.environment import FlinkOptions
from pipelines.flink.job import FlinkJobError, first_lines, flink_error, submit_in_fresh_environment
from pipelines.flink.monitor import JobMetrics, JobMonitor, free_port, local_rest_url, rest_configuration
from pipelines.flink.parse_once import prepare_parse_once

if TYPE_CHECKING:
    from pyflink.table import TableEnvironment

#: How long a restart waits for the JVM of a killed attempt to exit by itself before killing it.
ORPHAN_JVM_GRACE_SECONDS = 15.0
__all__ = ["TERMINAL_STATES", "RunningJob", "gateway_jvm_pid", "start_job", "stop_orphaned_jvm"]


@dataclass
class RunningJob:
    """A job submitted by :func:`start_job`; poll :meth:`status` and :meth:`sample` until the status is terminal."""

    job_id: str
    jvm_pid: int | None
    _client: Any
    _result: Any
    _monitor: JobMonitor
    cluster: ClusterRest | None = None

    def status(self) -> str:
        """RUNNING, FINISHED, …; raises :class:`~pipelines.flink.job.FlinkJobError` with Flink's message on failure."""
        if self.cluster is not None:
            state = self.cluster.job_state(self.job_id)
            if state == "FAILED":
                raise FlinkJobError(first_lines(self.cluster.failure_cause(self.job_id)))
            return state
        try:
            return str(self._client.get_job_status().result()).rsplit(".", 1)[-1]
        except Exception:  # py4j: the mini-cluster is gone, the job has ended
            pass
        try:
            self._result.wait()
        except Exception as error:  # py4j wraps Java exceptions; keep Flink's message, drop the Java stack
            raise flink_error(error) from error
        return "FINISHED"

    def stop_with_savepoint(self, directory: Path, timeout_s: float = 120.0) -> str:
        """Stop the job with a savepoint under ``directory`` and return the savepoint's path; waits ``timeout_s``.

        No drain (no MAX watermark): open windows stay in the savepoint and fire after a restart from it, exactly as
        if the job had never stopped. The file sink commits its part files on the savepoint, so everything the job
        emitted before stopping is a finished part file when this returns. PyFlink's own
        ``JobClient.stop_with_savepoint`` calls a Java signature that Flink 2 no longer has (the savepoint format
        became a parameter), so this calls the Java client with the canonical format.
        """
        from pyflink.java_gateway import get_gateway

        jvm = get_gateway().jvm
        directory.mkdir(parents=True, exist_ok=True)
        canonical = jvm.org.apache.flink.core.execution.SavepointFormatType.CANONICAL
        try:
            future = self._client._j_job_client.stopWithSavepoint(False, directory.resolve().as_uri(), canonical)
            return str(future.get(int(timeout_s * 1000), jvm.java.util.concurrent.TimeUnit.MILLISECONDS))
        except Exception as error:  # py4j wraps Java exceptions; keep Flink's message, drop the Java stack
            raise flink_error(error) from error

    def sample(self) -> JobMetrics | None:
        """The job's metrics now (lines read, watermark), or None when the REST endpoint does not answer."""
        return self._monitor.sample()

    def cancel(self) -> None:
        """Cancel the job without a savepoint (its retained checkpoint stays); ignores a job that already ended. On a
        cluster through its REST API: there the job would otherwise keep running after this process ends."""
        if self.cluster is not None:
            self.cluster.cancel(self.job_id)
            return
        with contextlib.suppress(Exception):  # py4j: the mini-cluster is gone, the job has ended
            self._client.cancel().result()


def start_job(job_sql: JobSql, options: FlinkOptions, restore: Path | None) -> RunningJob:
    """Submit ``job_sql`` (restored from the checkpoint ``restore`` when given) without waiting for it."""
    job_sql, options = prepare_parse_once(job_sql, options)
    keys = checkpoint_configuration(restore)
    if options.cluster is None:
        port = free_port()
        keys |= rest_configuration(port)
        rest_url = local_rest_url(port)
    else:
        rest_url = options.cluster.rest_url

    def configure(env: TableEnvironment) -> None:
        config = env.get_config()
        for key, value in keys.items():
            config.set(key, value)

    result = submit_in_fresh_environment(job_sql, options, configure)
    client = result.get_job_client()
    job_id = str(client.get_job_id())
    cluster = ClusterRest(rest_url) if options.cluster is not None else None
    return RunningJob(job_id, gateway_jvm_pid(), client, result, JobMonitor(rest_url, job_id), cluster)


def gateway_jvm_pid() -> int | None:
    """The pid of the JVM PyFlink started for this process (its gateway server), if any."""
    import psutil

    for child in psutil.Process().children(recursive=True):
        try:  # by its main class: a test may also have started cluster JVMs from this process
            if "java" in child.name() and "PythonGatewayServer" in " ".join(child.cmdline()):
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
