"""A monitored folder: a file dropped into it after the job started is read, then the never-ending job is cancelled.

The job reads ``user_txn_stats``'s source folder with ``source.monitor-interval`` (1 s). The first file is there at
start; once its windows show up in finished part files (the job is running), a second file with later events and one
marked malformed line is published atomically (hidden name, then rename). It counts as read when (a) the marked line is
in the dead letters and (b) a window ending after the first file's events has fired, which only the second file's
events can do (the watermark advances with events only). A monitored job never finishes, so the test cancels it
through the TableResult's job client.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest

from pipelines.codegen.flink_sql import OutputPaths, build_job_sql
from pipelines.config import PROJECT_ROOT
from pipelines.contracts.load import load_contract
from pipelines.flink.environment import FlinkOptions, create_table_environment
from pipelines.layout import finished_files
from pipelines.sources.generator import SourceSpec, safe_jitter, write_events
from pipelines.sources.location import FileSource

pytestmark = pytest.mark.e2e

WAIT_S = 120.0
MARKER = "not json: dropped-after-start"


def _wait_for(what: str, condition: Callable[[], bool], timeout_s: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")


def _window_ends(folder: Path, join_keys: int) -> pd.Series:
    parts = finished_files(folder) if folder.exists() else []
    frames = [pd.read_csv(part, header=None, usecols=[join_keys + 1]) for part in parts if part.stat().st_size]
    if not frames:
        return pd.Series([], dtype="datetime64[ns]")
    return pd.to_datetime(pd.concat(frames).iloc[:, 0])


def _dead_letter_text(folder: Path) -> str:
    return "".join(p.read_text() for p in finished_files(folder)) if folder.exists() else ""


def test_a_file_dropped_after_the_job_started_is_read(tmp_path: Path) -> None:
    contract = load_contract(PROJECT_ROOT / "contracts" / "user_txn_stats.yaml").contract
    spec, jitter, keys = SourceSpec.from_contracts([contract]), safe_jitter([contract]), len(contract.entity.join_keys)
    events = tmp_path / "events"
    first = write_events(spec, events, 3_000, seed=1, duration=timedelta(hours=1), max_jitter=jitter, entities=50)
    later = write_events(spec, tmp_path / "later", 1_000, seed=2, start=first.last_event + timedelta(minutes=10),
                         duration=timedelta(minutes=30), max_jitter=jitter, entities=50)
    outputs = OutputPaths((tmp_path / "out" / "features").as_uri(), (tmp_path / "out" / "dead_letters").as_uri())
    job = build_job_sql([contract], {contract.source.name: FileSource.local(events, monitor_interval=timedelta(
        seconds=1))}, {contract.table_name: outputs})
    env = create_table_environment(FlinkOptions(checkpoint_dir=tmp_path / "ckpt", parallelism=1,
                                                checkpoint_interval_ms=1000))
    for statement in job.ddl:
        env.execute_sql(statement)
    statements = env.create_statement_set()
    for insert in job.inserts:
        statements.add_insert_sql(insert)
    client = statements.execute().get_job_client()
    assert client is not None
    features, dead_letters = tmp_path / "out" / "features", tmp_path / "out" / "dead_letters"
    try:
        _wait_for("the first file's windows", lambda: len(_window_ends(features, keys)) > 0)
        assert _window_ends(features, keys).max() <= pd.Timestamp(first.last_event.replace(tzinfo=None))

        (later_file,) = later.files
        with later_file.open("a") as handle:
            handle.write(MARKER + "\n")
        hidden = events / f".{later_file.name}.tmp"
        later_file.rename(hidden)  # same folder as the final name: the rename below is atomic
        hidden.rename(events / "transactions-late-drop.jsonl")

        _wait_for("the dropped file's malformed line in the dead letters",
                  lambda: MARKER in _dead_letter_text(dead_letters))
        beyond_first = pd.Timestamp((first.last_event + timedelta(minutes=10)).replace(tzinfo=None))
        _wait_for("a window that only the dropped file's events can close",
                  lambda: bool((_window_ends(features, keys) > beyond_first).any()))
    finally:
        client.cancel().result()
    _wait_for("the job to be cancelled", lambda: _stopped(client), 60)


def _stopped(client: object) -> bool:
    """True once the job is CANCELED; a local job's mini-cluster shuts down with it, which also means stopped."""
    try:
        return client.get_job_status().result().name == "CANCELED"  # type: ignore[attr-defined]
    except Exception as error:  # py4j error from the JVM
        if "has already been shut down" in str(error):
            return True
        raise
