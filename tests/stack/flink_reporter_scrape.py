"""Run by test_flink_reporter.py in its own process: a small streaming job on PyFlink's mini-cluster with Flink's
Prometheus reporter, scraped until job, task and checkpoint metrics appear; writes the metric names it saw.

Why a separate process: the reporter jar must be on the JVM's classpath when the gateway starts (PyFlink's local
mini-cluster does not load ``plugins/``; ``HADOOP_CLASSPATH`` is the launcher's hook for extra jars), and a test
process may have started its JVM already.

Usage: python flink_reporter_scrape.py PORT OUT_FILE CHECKPOINT_DIR
"""

from __future__ import annotations

import re
import sys
import time
import urllib.request
from pathlib import Path

from pyflink.common import Configuration
from pyflink.table import EnvironmentSettings, TableEnvironment

from pipelines.jvm.java import ensure_java_home

#: Stop scraping once these appear (a job, a task and a completed checkpoint exist), or at the deadline.
WANTED = ("flink_jobmanager_job_lastCheckpointDuration", "flink_taskmanager_job_task_busyTimeMsPerSecond")


def main(port: str, out_file: str, checkpoint_dir: str, deadline_s: float = 180.0) -> None:
    ensure_java_home()
    config = Configuration()
    config.set_string("metrics.reporter.prom.factory.class",
                      "org.apache.flink.metrics.prometheus.PrometheusReporterFactory")
    config.set_string("metrics.reporter.prom.port", port)
    config.set_string("execution.checkpointing.interval", "1s")
    config.set_string("execution.checkpointing.dir", Path(checkpoint_dir).as_uri())
    config.set_string("parallelism.default", "1")
    config.set_string("restart-strategy.type", "none")
    env = TableEnvironment.create(EnvironmentSettings.new_instance().in_streaming_mode()
                                  .with_configuration(config).build())
    env.execute_sql("CREATE TABLE src (k INT, v DOUBLE) WITH ('connector' = 'datagen', 'rows-per-second' = '500', "
                    "'fields.k.min' = '1', 'fields.k.max' = '10')")
    env.execute_sql("CREATE TABLE snk (k INT, s DOUBLE) WITH ('connector' = 'blackhole')")
    result = env.execute_sql("INSERT INTO snk SELECT k, SUM(v) FROM src GROUP BY k")
    names: set[str] = set()
    deadline = time.monotonic() + deadline_s
    try:
        while time.monotonic() < deadline:
            time.sleep(2)
            try:
                body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
            except OSError:
                continue
            names = {m.group(1) for m in re.finditer(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]", body, re.MULTILINE)}
            if all(name in names for name in WANTED):
                break
    finally:
        Path(out_file).write_text("\n".join(sorted(names)) + "\n")
        result.get_job_client().cancel().result()


if __name__ == "__main__":
    main(*sys.argv[1:4])
