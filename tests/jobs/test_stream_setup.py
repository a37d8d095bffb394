"""The quick parts of ``stream`` (no Flink job): which source it reads, the identity of its state folder, where a
restart resumes, the metric names the dashboard relies on, and ``run --events-dir`` refusing bad input."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.config import Settings
from pipelines.contracts.model import Contract
from pipelines.flink.checkpoints import latest_restore_point
from pipelines.jobs import stream_metrics
from pipelines.jobs.stream import choose_source_kind, stream_id, stream_locations
from pipelines.sources.location import FileSource


def test_kafka_is_read_only_when_its_brokers_are_configured(tmp_path: Path) -> None:
    assert choose_source_kind(Settings(data_dir=tmp_path), None) == "files"
    assert choose_source_kind(Settings(data_dir=tmp_path, kafka_bootstrap_servers="127.0.0.1:1"), None) == "kafka"
    assert choose_source_kind(Settings(data_dir=tmp_path, kafka_bootstrap_servers="127.0.0.1:1"), "files") == "files"
    assert choose_source_kind(Settings(data_dir=tmp_path, stream_source="kafka"), None) == "kafka"


def test_the_files_stream_watches_the_data_folders_events_folder(tmp_path: Path,
                                                                 project_contract: Callable[[str], Contract]) -> None:
    settings = Settings(data_dir=tmp_path / "data", stream_watch_interval_ms=300)
    locations, jars = stream_locations(settings, [project_contract("user_txn_stats")], "files")
    (location,) = locations.values()
    assert isinstance(location, FileSource) and not location.bounded and jars == ()
    assert location.local_path == (settings.events_dir / "transactions").resolve()
    assert location.local_path.is_dir()  # created, so the job can watch it before the first file
    assert location.monitor_interval.total_seconds() == 0.3


def test_a_changed_contract_gets_a_stream_of_its_own(project_contract: Callable[[str], Contract]) -> None:
    contract = project_contract("user_txn_stats")
    changed = contract.model_copy(update={"description": "another text"})
    assert stream_id([contract], "files") == stream_id([contract], "files")
    assert stream_id([contract], "files") != stream_id([changed], "files")
    assert stream_id([contract], "files") != stream_id([contract], "kafka")


def _completed(folder: Path, mtime: int) -> Path:
    folder.mkdir(parents=True)
    (folder / "_metadata").write_bytes(b"x")
    os.utime(folder / "_metadata", (mtime, mtime))
    return folder


def test_a_restart_resumes_from_the_newer_of_savepoint_and_checkpoint(tmp_path: Path) -> None:
    checkpoints, savepoints = tmp_path / "checkpoints", tmp_path / "savepoints"
    assert latest_restore_point(checkpoints, savepoints) is None
    checkpoint = _completed(checkpoints / "job1" / "chk-7", 1_000)
    assert latest_restore_point(checkpoints, savepoints) == checkpoint
    savepoint = _completed(savepoints / "savepoint-abc-1", 2_000)  # a clean stop after it
    (checkpoints / "job1" / "chk-8").mkdir()  # in progress: no _metadata, never a restore point
    assert latest_restore_point(checkpoints, savepoints) == savepoint
    newer = _completed(checkpoints / "job2" / "chk-3", 3_000)  # the resumed job checkpointed, then crashed
    assert latest_restore_point(checkpoints, savepoints) == newer


def test_the_stream_metric_names_are_the_agreed_ones() -> None:
    names = {metric._name for metric in stream_metrics.ALL_METRICS}
    assert names == {"fp_stream_events", "fp_stream_events_per_second", "fp_stream_source_lag_seconds",
                     "fp_stream_dead_letters", "fp_stream_commit_latency_seconds",
                     "fp_stream_last_commit_timestamp_seconds", "fp_online_push_rows", "fp_online_freshness_seconds"}
    stream_metrics.STREAM_DEAD_LETTERS.labels("transactions", "malformed_json").inc(0)
    assert REGISTRY.get_sample_value("fp_stream_dead_letters_total",
                                     {"source": "transactions", "reason": "malformed_json"}) is not None


@pytest.mark.parametrize(("args", "message"), [
    (["--events", "10", "--events-dir", "."], "exclude each other"),
    (["--events-dir", "{tmp}/nowhere"], "is not a folder"),
    (["--events-dir", "{tmp}"], "has no folder for source(s)"),
])
def test_run_events_dir_refuses_bad_input_with_a_usage_error(tmp_path: Path, args: list[str], message: str,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FP_DATA_DIR", str(tmp_path / "data"))
    from pipelines.config import get_settings

    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["run", *[a.format(tmp=tmp_path) for a in args]])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())
    assert not (tmp_path / "data" / "flink").exists()  # refused before anything was removed or started
