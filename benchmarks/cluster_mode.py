"""Benchmark: cluster mode on a standalone Flink cluster against the local mini-cluster, and a TaskManager loss.

Each repetition, side by side on the same generated events (one contract, ``--events`` lines with malformed ones):

1. start a cluster (:mod:`pipelines.testing.flink_cluster`: JobManager + one TaskManager, 127.0.0.1): seconds until
   the JobManager's REST API answers and until the TaskManager has registered; RSS of both when idle;
2. the mini-cluster run (:func:`run_contracts`, local target) and the same run on the cluster: wall seconds of each;
   for the cluster, ``submit`` = from calling the run to the job appearing on the cluster (TableEnvironment, SQL
   compilation, REST upload) and ``running`` = to the job being RUNNING; both Delta tables must have the same row
   count and both runs must be balanced (the rows themselves are compared in ``tests/jobs/test_cluster_mode.py``);
3. a second cluster run; once its job has completed a checkpoint, the TaskManager is SIGKILLed and a new one started:
   seconds from the kill until the new TaskManager registered, until the job RUNS again restored from its checkpoint,
   until the run ends; the run must be balanced with the same row count as the mini-cluster;
4. peak RSS (``VmHWM``) of the JobManager and of the TaskManagers, then the cluster is stopped (seconds).

    .venv/bin/python benchmarks/cluster_mode.py --runs 2 --events 200000

Raw results: benchmarks/results/cluster_mode.json (every repetition, medians, the machine's load).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import _results
import psutil
from deltalake import DeltaTable

from pipelines.config import PROJECT_ROOT, Settings
from pipelines.contracts.load import load_contract
from pipelines.contracts.model import Contract
from pipelines.jobs.compute import RunSummary, run_contracts
from pipelines.sources.generator import SourceSpec, safe_jitter, write_events
from pipelines.testing.flink_cluster import FlinkCluster, start_flink_cluster


def _rss_mib(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def _events(contract: Contract, folder: Path, events: int) -> Path:
    generated = write_events(SourceSpec.from_contracts([contract]), folder, events, seed=3,
                             duration=timedelta(hours=2), max_jitter=safe_jitter([contract]), entities=150,
                             bad_lines=events // 100)
    (path,) = generated.files
    return path.parent


def _get(cluster: FlinkCluster, path: str) -> Any:
    """The REST answer, or an empty dict when the JobManager is too busy to answer in time (the loops poll again)."""
    try:
        return cluster.rest(path)
    except OSError:
        return {}


class _Watch:
    """Records when the cluster first shows a job and when it first RUNS (polled every 0.1 s in a thread)."""

    def __init__(self, cluster: FlinkCluster) -> None:
        self.cluster, self.known = cluster, {job["jid"] for job in cluster.rest("/jobs/overview")["jobs"]}
        self.seen: float | None = None
        self.running: float | None = None
        self.job_id: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            for job in _get(self.cluster, "/jobs/overview").get("jobs", []):
                if job["jid"] not in self.known:
                    self.job_id = job["jid"]
                    self.seen = self.seen or time.perf_counter()
                    if job["state"] == "RUNNING":
                        self.running = self.running or time.perf_counter()
            time.sleep(0.1)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def _rows(settings: Settings, contract: Contract) -> int:
    return len(DeltaTable(str(settings.delta_table_path(contract.table_name))).to_pandas())


def _settings(data_dir: Path, cluster: FlinkCluster | None) -> Settings:
    settings = Settings(data_dir=data_dir, parallelism=2, checkpoint_interval_ms=500, jvm_heap="512m",
                        flink_restart_delay_ms=1000)
    return settings.on_cluster(cluster.rest_url if cluster else None)


def _timed_run(contract: Contract, events: Path, settings: Settings) -> tuple[RunSummary, float]:
    started = time.perf_counter()
    summary = run_contracts([contract], {"transactions": events}, settings)
    assert summary.balanced
    return summary, time.perf_counter() - started


def _kill_run(cluster: FlinkCluster, contract: Contract, events: Path, settings: Settings) -> dict[str, Any]:
    outcome: dict[str, Any] = {}
    runner = threading.Thread(target=lambda: outcome.update(summary=_timed_run(contract, events, settings)[0]))
    started = time.perf_counter()
    watch = _Watch(cluster)
    runner.start()
    while runner.is_alive():
        job = watch.job_id
        if job and watch.running and _get(cluster, f"/jobs/{job}/checkpoints").get("counts", {}).get("completed"):
            break
        time.sleep(0.1)
    watch.stop()
    assert runner.is_alive() and watch.job_id, "the job ended before the kill; use more --events"
    killed = time.perf_counter()
    cluster.kill_taskmanager()
    cluster.start_taskmanager()
    registered = time.perf_counter()
    recovered = None
    while runner.is_alive():
        restored = _get(cluster, f"/jobs/{watch.job_id}/checkpoints").get("latest", {}).get("restored")
        state = _get(cluster, f"/jobs/{watch.job_id}").get("state")
        if recovered is None and restored and state == "RUNNING":
            recovered = time.perf_counter()
        time.sleep(0.1)
    runner.join()
    summary = outcome["summary"]
    assert summary.balanced and recovered is not None
    return {"kill_after_s": round(killed - started, 2), "new_taskmanager_registered_s": round(registered - killed, 2),
            "job_running_again_from_checkpoint_s": round(recovered - killed, 2),
            "run_finished_after_kill_s": round(time.perf_counter() - killed, 2), "rows": _rows(settings, contract)}


def repetition(contract: Contract, events: Path, work: Path) -> dict[str, Any]:
    started = time.perf_counter()
    cluster = start_flink_cluster(work / "cluster", taskmanagers=0)
    rest_up = time.perf_counter() - started
    try:
        cluster.start_taskmanager()
        ready = time.perf_counter() - started
        idle = {"jobmanager": _rss_mib(cluster.pids()["jobmanager"][0]),
                "taskmanager": _rss_mib(cluster.pids()["taskmanager"][0])}
        local, local_s = _timed_run(contract, events, _settings(work / "local", None))
        watch = _Watch(cluster)
        called = time.perf_counter()
        remote, remote_s = _timed_run(contract, events, _settings(work / "remote", cluster))
        watch.stop()
        local_rows, remote_rows = _rows(_settings(work / "local", None), contract), \
            _rows(_settings(work / "remote", cluster), contract)
        assert local_rows == remote_rows, (local_rows, remote_rows)
        kill = _kill_run(cluster, contract, events, _settings(work / "kill", cluster))
        assert kill["rows"] == local_rows
        peak = {"jobmanager": _rss_mib(cluster.pids()["jobmanager"][0], "VmHWM"),
                "taskmanagers": [_rss_mib(pid, "VmHWM") for pid in cluster.pids()["taskmanager"]]}
    finally:
        stopping = time.perf_counter()
        cluster.stop()
        stop_s = time.perf_counter() - stopping
    assert not any(psutil.pid_exists(pid) for pids in cluster.pids().values() for pid in pids)
    return {
        "cluster_start": {"jobmanager_rest_s": round(rest_up, 2), "taskmanager_registered_s": round(ready, 2)},
        "mini_cluster_run_s": round(local_s, 2), "mini_cluster_flink_s": round(local.flink_seconds, 2),
        "cluster_run_s": round(remote_s, 2), "cluster_flink_s": round(remote.flink_seconds, 2),
        "cluster_submit_s": round((watch.seen or float("nan")) - called, 2),
        "cluster_job_running_s": round((watch.running or float("nan")) - called, 2),
        "rows": local_rows, "taskmanager_kill": kill,
        "rss_idle_mib": idle, "rss_peak_mib": peak,
        "note": "rss_peak of the new TaskManager covers only the part of the run after the kill",
        "cluster_stop_s": round(stop_s, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--events", type=int, default=200_000)
    args = parser.parse_args()
    _results.start()
    contract = load_contract(PROJECT_ROOT / "contracts" / "user_txn_stats.yaml").contract
    runs = []
    with tempfile.TemporaryDirectory(prefix="cluster-bench-") as tmp:
        events = _events(contract, Path(tmp) / "events", args.events)
        for index in range(args.runs):
            runs.append(repetition(contract, events, Path(tmp) / f"rep{index}"))
            print(runs[-1], flush=True)

    def median(path: tuple[str, ...]) -> float:
        values = []
        for run in runs:
            value: Any = run
            for key in path:
                value = value[key]
            values.append(value)
        return round(statistics.median(values), 2)

    medians = {"cluster_start_jobmanager_rest_s": median(("cluster_start", "jobmanager_rest_s")),
               "cluster_start_taskmanager_registered_s": median(("cluster_start", "taskmanager_registered_s")),
               "mini_cluster_run_s": median(("mini_cluster_run_s",)), "cluster_run_s": median(("cluster_run_s",)),
               "cluster_submit_s": median(("cluster_submit_s",)),
               "cluster_job_running_s": median(("cluster_job_running_s",)),
               "recovery_job_running_again_s": median(("taskmanager_kill", "job_running_again_from_checkpoint_s")),
               "recovery_new_taskmanager_registered_s": median(("taskmanager_kill", "new_taskmanager_registered_s")),
               "jobmanager_rss_peak_mib": median(("rss_peak_mib", "jobmanager"))}
    medians["cluster_over_mini_cluster_run"] = round(medians["cluster_run_s"] / medians["mini_cluster_run_s"], 2)
    print(medians)
    _results.write("cluster_mode", vars(args) | {"contract": contract.name, "parallelism": 2, "slots": 2,
                                                 "jobmanager_memory": "1024m", "taskmanager_memory": "1536m",
                                                 "heartbeat": "1 s interval, 15 s timeout"},
                   {"medians": medians, "runs": runs})


if __name__ == "__main__":
    main()
