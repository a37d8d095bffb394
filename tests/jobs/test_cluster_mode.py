"""Cluster mode on a real standalone Flink cluster: the same rows as the mini-cluster, and a TaskManager loss survived.

One cluster for the module (a JobManager and a TaskManager started from the PyFlink distribution on 127.0.0.1,
:mod:`pipelines.testing.flink_cluster`), stopped at the end even when a test fails.

1. The same events (with malformed lines) run through :func:`run_contracts` twice, on the local mini-cluster and on the
   cluster: the Delta tables hold the same rows (keys, window bounds, counts and last values identical; DOUBLE
   aggregates within 1e-9 relative, since two runs may add in another order), and the dead-letter tables the same
   payloads. The cluster's REST API shows the job FINISHED there, so the run really left this process.
2. A backfill (batch mode) on the cluster over the same kind of events equals the pandas reference, and its job ran on
   the cluster.
3. A bounded Kafka run (parallelism 2) on the cluster: the job is submitted as a changed stream graph
   (:mod:`pipelines.flink.single_reader`), and the cluster's job shows the reader, classification and local window
   aggregates in one task at parallelism 1 and the global window aggregates at 2; Delta equals the reference.
4. A longer run on the cluster; once its job RUNS and has completed a checkpoint, the TaskManager is SIGKILLed and a
   new one started. The run must end balanced, with the job restored from a checkpoint by the cluster (its checkpoint
   statistics name the restored one), and Delta must equal the independent pandas reference of
   ``test_flink_vs_reference`` row for row (no duplicate, none missing), every malformed line dead-lettered once.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from deltalake import DeltaTable

from pipelines.config import PROJECT_ROOT, Settings
from pipelines.contracts.load import load_contract
from pipelines.contracts.model import Contract
from pipelines.delta import dead_letters
from pipelines.jobs.backfill import run_backfill
from pipelines.jobs.compute import RunSummary, run_contracts
from pipelines.sources.kafka import create_topic, kafka_location, produce_lines
from pipelines.testing.flink_cluster import FlinkCluster, flink_cluster
from pipelines.testing.kafka_broker import KafkaBroker
from tests.jobs.test_crash_recovery import write_events_with_malformed_lines
from tests.jobs.test_flink_vs_reference import classify, reference_rows

#: A cluster start took 4-7 s on an idle machine and over 2 minutes with seven other engineers' jobs on two cores.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]

SAME_ROWS_EVENTS = 6_000
KILL_EVENTS = 100_000
RELATIVE_TOLERANCE = 1e-9
RUN_TIMEOUT_S = 1200


@pytest.fixture(scope="module")
def contract() -> Contract:
    return load_contract(PROJECT_ROOT / "contracts" / "user_txn_stats.yaml").contract


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> FlinkCluster:
    started = time.perf_counter()
    with flink_cluster(tmp_path_factory.mktemp("flink-cluster")) as running:
        print(f"\ncluster ready in {time.perf_counter() - started:.1f}s: {running.rest_url} {running.pids()}")
        yield running
    assert not running.pids()["jobmanager"] and not running.pids()["taskmanager"], "a cluster process survived"


def _settings(data_dir: Path, cluster: FlinkCluster | None, **more: Any) -> Settings:
    settings = Settings(data_dir=data_dir, parallelism=2, checkpoint_interval_ms=500, jvm_heap="512m",
                        flink_restart_delay_ms=1000, **more)
    return settings.on_cluster(cluster.rest_url if cluster else None)


def _delta(settings: Settings, table: str) -> pd.DataFrame:
    return DeltaTable(str(settings.delta_table_path(table))).to_pandas()


def assert_same_rows(actual: pd.DataFrame, expected: pd.DataFrame, contract: Contract) -> None:
    """Row for row: identical keys and windows, no duplicate; exact counts and last values, DOUBLEs within 1e-9."""
    keys = [*contract.entity.join_keys, "window_end"]
    actual, expected = actual.copy(), expected.copy()
    for frame in (actual, expected):
        for column in ("window_start", "window_end"):
            frame[column] = pd.to_datetime(frame[column], utc=True).astype("datetime64[us, UTC]")
    assert not actual.duplicated(keys).any(), f"{actual.duplicated(keys).sum()} duplicate rows"
    merged = expected[keys].merge(actual[keys], how="outer", indicator=True)
    assert (merged["_merge"] == "both").all(), merged["_merge"].value_counts().to_dict()
    assert len(actual) == len(expected)
    actual = actual.sort_values(keys, ignore_index=True)
    expected = expected.sort_values(keys, ignore_index=True)
    assert (actual["window_start"] == expected["window_start"]).all()
    for feature in contract.features:
        got, want = actual[feature.name], expected[feature.name]
        assert (got.isna() == want.isna()).all(), f"{feature.name}: NULLs differ"
        present = want.notna()
        if feature.aggregation in ("count", "count_distinct", "last"):
            assert (got[present].astype(str).to_numpy() == want[present].astype(str).to_numpy()).all(), feature.name
        else:
            np.testing.assert_allclose(got[present].astype(float), want[present].astype(float),
                                       rtol=RELATIVE_TOLERANCE, atol=0, err_msg=feature.name)


def test_cluster_run_gives_the_same_delta_rows_as_the_mini_cluster(tmp_path: Path, cluster: FlinkCluster,
                                                                    contract: Contract) -> None:
    path, lines = write_events_with_malformed_lines(contract, tmp_path / "events", SAME_ROWS_EVENTS, seed=5)
    local = _settings(tmp_path / "local", None)
    remote = _settings(tmp_path / "remote", cluster)
    summaries: dict[str, RunSummary] = {}
    for name, settings in (("mini-cluster", local), ("cluster", remote)):
        started = time.perf_counter()
        summaries[name] = run_contracts([contract], {"transactions": path.parent}, settings)
        print(f"\n{name}: {time.perf_counter() - started:.1f}s (flink {summaries[name].flink_seconds:.1f}s)")
        assert summaries[name].balanced, name

    jobs = {job["jid"]: job for job in cluster.rest("/jobs/overview")["jobs"]}
    assert jobs[summaries["cluster"].job_id]["state"] == "FINISHED", "the cluster run did not run on the cluster"
    assert summaries["mini-cluster"].job_id not in jobs

    assert_same_rows(_delta(remote, contract.table_name), _delta(local, contract.table_name), contract)
    good, _ = classify(lines, contract)
    assert_same_rows(_delta(remote, contract.table_name), reference_rows(good, contract), contract)
    dead = dead_letters.table_name("transactions")
    malformed = sorted(line for line in lines if line.startswith("not json"))
    assert sorted(_delta(remote, dead)["payload"]) == sorted(_delta(local, dead)["payload"]) == malformed


def test_backfill_on_the_cluster_equals_the_reference(tmp_path: Path, cluster: FlinkCluster,
                                                     contract: Contract) -> None:
    path, lines = write_events_with_malformed_lines(contract, tmp_path / "events", SAME_ROWS_EVENTS, seed=8)
    settings = _settings(tmp_path / "data", cluster)
    summary = run_backfill([contract], {"transactions": path.parent}, settings,
                           start=datetime(2000, 1, 1, tzinfo=UTC), end=datetime(2100, 1, 1, tzinfo=UTC))
    assert summary.balanced
    jobs = {job["jid"]: job for job in cluster.rest("/jobs/overview")["jobs"]}
    assert jobs[str(summary.job_id)]["state"] == "FINISHED", "the backfill did not run on the cluster"
    good, _ = classify(lines, contract)
    assert_same_rows(_delta(settings, contract.table_name), reference_rows(good, contract), contract)


def test_kafka_run_on_the_cluster_runs_the_stage_behind_its_reader_in_one_task(
        tmp_path: Path, cluster: FlinkCluster, contract: Contract, kafka_broker: KafkaBroker) -> None:
    path, lines = write_events_with_malformed_lines(contract, tmp_path / "events", SAME_ROWS_EVENTS, seed=9)
    topic = f"cluster-{tmp_path.name[-10:]}".replace("_", "-")
    create_topic(kafka_broker.bootstrap_servers, topic)  # one partition: file order, so no record is late
    assert produce_lines(kafka_broker.bootstrap_servers, topic, (line.encode() for line in lines)) == len(lines)
    settings = _settings(tmp_path / "data", cluster, kafka_bootstrap_servers=kafka_broker.bootstrap_servers,
                         kafka_group_id=topic, kafka_topics={"transactions": topic})
    summary = run_contracts([contract], {"transactions": kafka_location(settings, "transactions", bounded=True)},
                            settings)
    assert summary.balanced

    vertices = cluster.rest(f"/jobs/{summary.job_id}")["vertices"]
    shown = [(vertex["name"], vertex["parallelism"]) for vertex in vertices]
    (reader,) = [v for v in vertices if v["name"].startswith("Source: KafkaSource")]
    assert reader["parallelism"] == 1 and "LocalWindowAggregate" in reader["name"], shown
    (global_window,) = [v for v in vertices if "GlobalWindowAggregate" in v["name"]]
    assert global_window["parallelism"] == 2, shown
    good, _ = classify(lines, contract)
    assert_same_rows(_delta(settings, contract.table_name), reference_rows(good, contract), contract)
    table = _delta(settings, dead_letters.table_name("transactions"))
    assert sorted(table["payload"]) == sorted(line for line in lines if line.startswith("not json"))


def _rest(cluster: FlinkCluster, path: str) -> Any:
    """The REST answer, or None when the JobManager is too busy to answer in time (the loops poll again)."""
    try:
        return cluster.rest(path)
    except OSError:
        return None


def _running_job(cluster: FlinkCluster) -> str | None:
    overview = _rest(cluster, "/jobs/overview") or {"jobs": []}
    running = [job["jid"] for job in overview["jobs"] if job["state"] == "RUNNING"]
    return running[0] if running else None


def _completed_checkpoints(cluster: FlinkCluster, job_id: str) -> int:
    stats = _rest(cluster, f"/jobs/{job_id}/checkpoints")
    return int(stats["counts"]["completed"]) if stats else 0


def test_taskmanager_killed_mid_run_recovers_from_its_checkpoint_with_exact_delta(
        tmp_path: Path, cluster: FlinkCluster, contract: Contract) -> None:
    path, lines = write_events_with_malformed_lines(contract, tmp_path / "events", KILL_EVENTS, seed=13)
    settings = _settings(tmp_path / "data", cluster)
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["summary"] = run_contracts([contract], {"transactions": path.parent}, settings)
        except BaseException as error:  # handed to the test thread
            outcome["error"] = error

    runner = threading.Thread(target=run, name="cluster-run", daemon=True)
    started = time.perf_counter()
    runner.start()
    job_id = None
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while time.monotonic() < deadline and runner.is_alive():
        job_id = _running_job(cluster)
        if job_id and _completed_checkpoints(cluster, job_id) >= 1:
            break
        time.sleep(0.1)
    assert job_id and runner.is_alive(), f"the job ended before a checkpoint could be followed by a kill: {outcome}"
    killed_at = time.perf_counter()
    killed = cluster.kill_taskmanager()
    print(f"\nSIGKILLed TaskManager {killed} {killed_at - started:.1f}s after the run started "
          f"({_completed_checkpoints(cluster, job_id)} checkpoint(s) completed)")
    cluster.start_taskmanager()
    replaced_at = time.perf_counter()
    recovered_at = None
    while runner.is_alive() and time.monotonic() < deadline:
        stats = _rest(cluster, f"/jobs/{job_id}/checkpoints") or {}
        if recovered_at is None and stats.get("latest", {}).get("restored") and _running_job(cluster) == job_id:
            recovered_at = time.perf_counter()
        time.sleep(0.2)
    runner.join(timeout=max(1.0, deadline - time.monotonic()))
    assert not runner.is_alive(), "the run did not end in time"
    assert "error" not in outcome, outcome.get("error")
    summary = outcome["summary"]
    assert isinstance(summary, RunSummary)
    print(f"start_taskmanager returned {replaced_at - killed_at:.1f}s after the kill; job RUNNING again from its "
          f"checkpoint {(recovered_at or float('nan')) - killed_at:.1f}s after the kill; run finished "
          f"{time.perf_counter() - killed_at:.1f}s after the kill")

    restored = cluster.rest(f"/jobs/{job_id}/checkpoints")["latest"]["restored"]
    assert restored and restored["external_path"], "the job was not restored from a checkpoint"
    assert summary.job_id == job_id and summary.balanced
    assert len(summary.attempts) == 1, "the client started the job twice; the cluster was to restart it"
    good, _ = classify(lines, contract)
    assert_same_rows(_delta(settings, contract.table_name), reference_rows(good, contract), contract)
    table = _delta(settings, dead_letters.table_name("transactions"))
    assert sorted(table["payload"]) == sorted(line for line in lines if line.startswith("not json"))
