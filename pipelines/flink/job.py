"""Run a generated :class:`~pipelines.codegen.flink_sql.JobSql` as one statement set and wait for it to finish.

A Kafka job streaming at parallelism > 1 is submitted as the statement set's stream graph instead, changed so that
the stage behind its single reader runs in one task (:mod:`pipelines.flink.single_reader`)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
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


log = logging.getLogger(__name__)


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


#: Calcite keeps the planner's metadata provider in a Java thread-local, set on the thread that creates the planner,
#: and the planner caches the first metadata query it makes. py4j runs each call on one of its connection threads, so
#: when a job is optimised on a thread other than the one that created its environment, optimising fails with this
#: NullPointerException before anything runs, and every later job of that environment fails the same way (seen once
#: in a loaded CI run, after other in-process jobs). Nothing ran, so a fresh environment can submit the job again.
PLANNER_THREAD_ERROR = "NullPointerException: metadataHandlerProvider"


def submit_in_fresh_environment(job: JobSql, options: FlinkOptions,
                                configure: Callable[[TableEnvironment], None] = lambda _env: None) -> SubmittedJob:
    """Create the job's environment, ``configure`` it, submit ``job``; once more in a new environment when the
    planner lost its thread-local metadata provider (:data:`PLANNER_THREAD_ERROR`)."""
    for attempt in (1, 2):
        env = create_job_environment(job, options)
        configure(env)
        try:
            return submit_job(env, job)
        except FlinkJobError as error:
            if attempt == 2 or PLANNER_THREAD_ERROR not in str(error):
                raise
            log.warning("the Flink planner lost its metadata provider (a py4j thread without it): submitting the job "
                        "again in a new table environment")
    raise AssertionError("unreachable")


def run_job(job: JobSql, options: FlinkOptions) -> JobRun:
    """Submit the job in a fresh table environment and block until it is done."""
    started = time.perf_counter()
    job, options = prepare_parse_once(job, options)
    result = submit_in_fresh_environment(job, options)
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
