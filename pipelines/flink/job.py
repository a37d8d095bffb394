"""Run a generated :class:`~pipelines.codegen.flink_sql.JobSql` as one statement set and wait for it to finish."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pipelines.codegen.flink_sql import JobSql
from pipelines.errors import PlatformError, Terminal
from pipelines.flink.environment import FlinkOptions, create_table_environment
from pipelines.flink.parse_once import prepare_parse_once

if TYPE_CHECKING:
    from pyflink.table import TableEnvironment, TableResult


class FlinkJobError(PlatformError, Terminal):
    """The Flink job did not finish; the message carries Flink's own error (first lines of the Java exception)."""


@dataclass(frozen=True)
class JobRun:
    job_id: str | None
    setup_seconds: float
    job_seconds: float


def submit_job(env: TableEnvironment, job: JobSql) -> TableResult:
    """Execute the DDL, then submit every INSERT as one statement set (one job, one scan per source); don't wait.

    Both the bounded runs here and the streaming runs of :mod:`pipelines.jobs.run` (which poll the job and commit
    while it runs) submit through this, so a Flink error reads the same everywhere.
    """
    try:
        for statement in job.ddl:
            env.execute_sql(statement)
        statements = env.create_statement_set()
        for insert in job.inserts:
            statements.add_insert_sql(insert)
        return statements.execute()
    except Exception as error:  # py4j wraps Java exceptions; keep Flink's message, drop the Java stack
        raise flink_error(error) from error


def flink_error(error: Exception) -> FlinkJobError:
    """A :class:`FlinkJobError` with the first lines of Flink's message, without the Java stack."""
    return FlinkJobError(first_lines(str(error)))


def run_job(job: JobSql, options: FlinkOptions) -> JobRun:
    """Submit the job in a fresh table environment and block until it is done."""
    started = time.perf_counter()
    job, options = prepare_parse_once(job, options)
    env = create_table_environment(options)
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
