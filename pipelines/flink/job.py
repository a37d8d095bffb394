"""Run a generated :class:`~pipelines.codegen.flink_sql.JobSql` as one statement set and wait for it to finish.

A Kafka job streaming at parallelism > 1 is submitted as the statement set's stream graph instead, changed so that
the stage behind its single reader runs in one task (:mod:`pipelines.flink.single_reader`)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from pipelines.codegen.flink_sql import JobSql
from pipelines.errors import PlatformError, Terminal
from pipelines.flink.environment import FlinkOptions, create_table_environment
from pipelines.flink.parse_once import prepare_parse_once
from pipelines.flink.single_reader import (
    SingleReaderPlanError,
    execute_with_single_reader_stage,
    needs_single_reader_stage,
)

if TYPE_CHECKING:
    from pyflink.common import JobClient
    from pyflink.table import TableEnvironment


class SubmittedJob(Protocol):
    """What :func:`submit_job` returns: a ``TableResult`` (statement set) or a
    :class:`~pipelines.flink.single_reader.GraphJobResult` (stream graph); callers use these two methods only."""

    def get_job_client(self) -> JobClient | None: ...

    def wait(self) -> None: ...


class FlinkJobError(PlatformError, Terminal):
    """The Flink job did not finish; the message carries Flink's own error (first lines of the Java exception)."""


@dataclass(frozen=True)
class JobRun:
    job_id: str | None
    setup_seconds: float
    job_seconds: float


def submit_job(env: TableEnvironment, job: JobSql) -> SubmittedJob:
    """Execute the DDL, then submit every INSERT as one statement set (one job, one scan per source); don't wait.

    Both the bounded runs here and the streaming runs of :mod:`pipelines.jobs.run` (which poll the job and commit
    while it runs) submit through this, so a Flink error reads the same everywhere. A job with single-reader sources
    in an environment made with ``stream_graph=True`` (see :func:`create_job_environment`) runs with the stage behind
    those readers at parallelism 1 (:mod:`pipelines.flink.single_reader`).
    """
    from pyflink.table import StreamTableEnvironment

    try:
        for statement in job.ddl:
            env.execute_sql(statement)
        statements = env.create_statement_set()
        for insert in job.inserts:
            statements.add_insert_sql(insert)
        if job.single_reader_tables and isinstance(env, StreamTableEnvironment):
            return execute_with_single_reader_stage(env, statements, job.single_reader_tables)
        return statements.execute()
    except SingleReaderPlanError:
        raise
    except Exception as error:  # py4j wraps Java exceptions; keep Flink's message, drop the Java stack
        raise flink_error(error) from error


def flink_error(error: Exception) -> FlinkJobError:
    """A :class:`FlinkJobError` with the first lines of Flink's message, without the Java stack."""
    return FlinkJobError(first_lines(str(error)))


def create_job_environment(job: JobSql, options: FlinkOptions) -> TableEnvironment:
    """The table environment ``job`` is submitted in: one whose stream graph can be changed when the job needs the
    single-reader stage (:func:`~pipelines.flink.single_reader.needs_single_reader_stage`), the plain one otherwise."""
    return create_table_environment(options, stream_graph=needs_single_reader_stage(job, options))


def run_job(job: JobSql, options: FlinkOptions) -> JobRun:
    """Submit the job in a fresh table environment and block until it is done."""
    started = time.perf_counter()
    job, options = prepare_parse_once(job, options)
    env = create_job_environment(job, options)
    result = submit_job(env, job)
    setup = time.perf_counter() - started
    client = result.get_job_client()
    try:
        result.wait()
    except Exception as error:  # py4j wraps Java exceptions
        raise flink_error(error) from error
    return JobRun(str(client.get_job_id()) if client else None, setup, time.perf_counter() - started - setup)


def first_lines(message: str, limit: int = 12) -> str:
    """Flink's message without the Java stack: its first ``limit`` lines that are not ``at ...`` frames."""
    lines = [line for line in message.splitlines() if line.strip() and not line.lstrip().startswith("at ")]
    return "\n".join(lines[:limit])
