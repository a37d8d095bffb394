"""The Flink metric names the dashboard queries are the names Flink's Prometheus reporter really exports: a small job
on PyFlink's mini-cluster runs with the reporter (the same jar as the image's ``plugins/metrics-prometheus``, from the
PyFlink distribution) and its ``/metrics`` endpoint is scraped."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pyflink
import pytest
from test_dashboard import dashboard_queries, queried_names

pytestmark = pytest.mark.e2e

SCRAPER = Path(__file__).with_name("flink_reporter_scrape.py")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_every_flink_metric_the_dashboard_queries_is_exported_by_flinks_reporter(tmp_path: Path) -> None:
    jars = sorted((Path(pyflink.__file__).parent / "plugins" / "metrics-prometheus").glob("*.jar"))
    assert jars, "PyFlink's distribution ships plugins/metrics-prometheus"
    out = tmp_path / "names.txt"
    env = {**os.environ, "HADOOP_CLASSPATH": os.pathsep.join(map(str, jars)), "JVM_ARGS": "-Xmx512m"}
    subprocess.run([sys.executable, str(SCRAPER), str(_free_port()), str(out), str(tmp_path / "checkpoints")],
                   env=env, check=True, timeout=600, capture_output=True)
    exported = set(out.read_text().split())
    assert "flink_jobmanager_numRegisteredTaskManagers" in exported, sorted(exported)[:20]
    queried = {name for _, expr in dashboard_queries() for name in queried_names(expr) if name.startswith("flink_")}
    assert queried, "the dashboard shows Flink metrics"
    assert queried <= exported, f"not exported by Flink's reporter: {sorted(queried - exported)}"
