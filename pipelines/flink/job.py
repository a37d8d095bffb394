"""Run a generated :class:`~pipelines.codegen.flink_sql.JobSql` as one statement set and wait for it to finish."""

from __future__ import annotations

import time
from dataclasses import dataclass

from pipelines.codegen.flink_sql import JobSql
from pipelines.flink.environment import FlinkOptions, create_table_environment


class FlinkJobError(RuntimeError):
    """The Flink job did not finish; the message carries Flink's own error (first lines of the Java exception)."""


@dataclass(frozen=True)
class JobRun:
    job_id: str | None
    setup_seconds: float
    job_seconds: float


def run_job(job: JobSql, options: FlinkOptions) -> JobRun:
    """Execute the DDL, then every INSERT in one statement set (one job, one scan per source); block until done."""
    started = time.perf_counter()
    env = create_table_environment(options)
    try:
        for statement in job.ddl:
            env.execute_sql(statement)
        statements = env.create_statement_set()
        for insert in job.inserts:
            statements.add_insert_sql(insert)
        setup = time.perf_counter() - started
        result = statements.execute()
        client = result.get_job_client()
        result.wait()
    except Exception as error:  # py4j wraps Java exceptions; keep Flink's message, drop the Java stack
        raise FlinkJobError(_first_lines(str(error))) from error
    return JobRun(str(client.get_job_id()) if client else None, setup, time.perf_counter() - started - setup)


def _first_lines(message: str, limit: int = 12) -> str:
    lines = [line for line in message.splitlines() if line.strip() and not line.lstrip().startswith("at ")]
    return "\n".join(lines[:limit])
