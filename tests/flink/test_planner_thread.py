"""A job whose planner lost its thread-local metadata provider is submitted again in a fresh environment.

Real Flink, no stand-in: the first environment's provider is removed from the Java thread that optimises the job (what
happens when py4j runs the optimisation on a thread other than the one that created the planner; seen once in a
loaded CI run). That environment fails with Calcite's ``NullPointerException: metadataHandlerProvider`` and stays
broken; :func:`~pipelines.flink.job.submit_in_fresh_environment` submits the job again in a new one.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.codegen.flink_sql import JobSql
from pipelines.flink.environment import FlinkOptions
from pipelines.flink.job import PLANNER_THREAD_ERROR, FlinkJobError, submit_in_fresh_environment, submit_job

pytestmark = pytest.mark.e2e  # starts the JVM and runs two tiny jobs

JOB = JobSql(ddl=("CREATE TEMPORARY TABLE numbers (x INT) WITH ('connector' = 'datagen', 'number-of-rows' = '5')",
                  "CREATE TEMPORARY TABLE sink (x INT) WITH ('connector' = 'blackhole')"),
             inserts=("INSERT INTO sink SELECT x FROM numbers",))


def _remove_metadata_provider(env: object) -> None:
    """Clear Calcite's thread-local provider on the thread py4j runs the next calls on (the planner's class loader)."""
    loader = env._j_tenv.getPlanner().getClass().getClassLoader()  # type: ignore[attr-defined]
    base = loader.loadClass("org.apache.calcite.rel.metadata.RelMetadataQueryBase")
    base.getField("THREAD_PROVIDERS").get(None).remove()


def test_a_job_whose_planner_lost_its_provider_is_submitted_again(tmp_path: Path) -> None:
    from pipelines.flink.job import create_job_environment

    options = FlinkOptions(checkpoint_dir=tmp_path / "ckpt", parallelism=1)
    broken = create_job_environment(JOB, options)
    _remove_metadata_provider(broken)
    with pytest.raises(FlinkJobError, match=PLANNER_THREAD_ERROR):
        submit_job(broken, JOB)  # the failure is real, and its message is the one the retry looks for

    attempts: list[int] = []

    def break_the_first(env: object) -> None:
        attempts.append(1)
        if len(attempts) == 1:
            _remove_metadata_provider(env)

    result = submit_in_fresh_environment(JOB, options, break_the_first)
    assert len(attempts) == 2
    assert result.get_job_client() is not None
    result.wait()  # raises with Flink's error if the resubmitted job failed
