"""Five runs in a row of the parallelism-2 Kafka scenario (issue: no silent loss with idle and empty partitions).

Runs ``tests/jobs/test_stream_kafka_idle_partition.py`` with ``FP_TEST_KAFKA_P2_RUNS=5``: one real Kafka broker, five
real ``stream`` jobs at parallelism 2, each on a fresh topic (three partitions: one empty, one idle for longer than
the idle timeout), consumer group and data folder, three phases in which the whole topic is idle for longer than
the idle timeout and then one partition gets a burst spanning 30 minutes of event time (the race the single-reader
stage closes, :mod:`pipelines.flink.single_reader`), each stopped with SIGTERM (stop-with-savepoint) and checked
for balance (accepted + dead letters + open sentinels = records), exact dead letters and Delta equal to the
independent reference. Records every run's verdict, duration and counts. A correctness record, not a speed
figure: the durations depend on the machine's load, which is recorded too.

    .venv/bin/python benchmarks/kafka_p2_five_runs.py
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
import _results  # noqa: E402

RUNS = 5
TEST = "tests/jobs/test_stream_kafka_idle_partition.py"


def main() -> None:
    _results.start()
    report = ROOT / ".tools" / "kafka_p2_five_runs.xml"
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", TEST,
                           f"--junitxml={report}"], cwd=ROOT, capture_output=True, text=True, check=False,
                          env={**os.environ, "FP_TEST_KAFKA_P2_RUNS": str(RUNS)})
    counts = {int(m.group(1)): m.group(0) for m in re.finditer(r"run (\d+): .*", done.stdout)}
    runs = []
    for case in ET.parse(report).getroot().iter("testcase"):
        seed = 100 + int(re.search(r"\[(\d+)\]", case.get("name", "")).group(1))
        failure = case.find("failure")
        runs.append({"test": case.get("name"), "seconds": round(float(case.get("time", 0)), 1),
                     "passed": failure is None and case.find("error") is None and case.find("skipped") is None,
                     "counts": counts.get(seed), "failure": None if failure is None else failure.get("message")})
    passed = sum(r["passed"] for r in runs)
    print(f"{passed}/{len(runs)} runs passed (pytest exit {done.returncode})")
    path = _results.write("kafka_p2_five_runs", {"runs": RUNS, "test": TEST, "parallelism": 2, "idle_timeout": "2s",
                                                 "partitions": 3, "wholly_idle_bursts": 3, "burst_events": 600,
                                                 "plan": "one Kafka reader; classification and local window "
                                                         "aggregates at parallelism 1 chained to it; global window "
                                                         "aggregates at 2"},
                          {"runs": runs, "passed": passed, "all_passed": passed == RUNS and len(runs) == RUNS,
                           "pytest_exit_code": done.returncode})
    print(f"results: {path}")
    sys.exit(0 if passed == RUNS else 1)


if __name__ == "__main__":
    main()
