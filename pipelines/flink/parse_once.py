"""The switch between the two ways a job parses its lines: once per line (Java functions) or per call (plain SQL).

``FlinkOptions.parse_once`` (``FP_PARSE_ONCE``, default ``auto``):

* ``auto``: rewrite the job for parse-once (:mod:`pipelines.codegen.parse_once`) and add the functions' jar
  (:mod:`pipelines.jvm.udf_jar`, built once and cached); when the jar cannot be built (no Maven, no network on the
  first run), log why and run the plain SQL, which gives the same rows and dead letters, only slower.
* ``on``: the same, but a jar that cannot be built is an error (benchmarks and tests of the fast path use it).
* ``off``: the plain SQL as generated.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from pipelines.codegen.flink_sql import JobSql
from pipelines.codegen.parse_once import parse_once_job
from pipelines.flink.environment import FlinkOptions
from pipelines.jvm.java_build import JavaBuildError
from pipelines.jvm.udf_jar import parse_once_jar

log = logging.getLogger(__name__)


def prepare_parse_once(job: JobSql, options: FlinkOptions) -> tuple[JobSql, FlinkOptions]:
    """The job and options to run, per ``options.parse_once`` (module docstring)."""
    if options.parse_once == "off":
        return job, options
    rewritten = parse_once_job(job)
    if rewritten is job:
        return job, options
    try:
        jar = parse_once_jar()
    except JavaBuildError as error:
        if options.parse_once == "on":
            raise
        log.warning("parse-once functions unavailable, running the plain SQL (same results, slower): %s", error)
        return job, options
    return rewritten, replace(options, jars=(*options.jars, jar))
