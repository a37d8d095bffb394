"""The source table a location generates: a Kafka golden file, the monitored-folder option, and the typed locations.

Golden files live beside the other generated jobs (``tests/golden/flink/``); ``UPDATE_GOLDEN=1`` rewrites them.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest

from pipelines.codegen.flink_sql import OutputPaths, build_job_sql
from pipelines.config import PROJECT_ROOT
from pipelines.contracts.load import load_contract
from pipelines.sources.location import FileSource, KafkaSource, SourceLocation, as_location

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "flink"


def _job(location: SourceLocation | str, contract: str = "user_txn_stats") -> str:
    loaded = load_contract(PROJECT_ROOT / "contracts" / f"{contract}.yaml").contract
    outputs = {loaded.table_name: OutputPaths(f"file:///run/{loaded.table_name}/features",
                                              f"file:///run/{loaded.table_name}/dead_letters")}
    return build_job_sql([loaded], {loaded.source.name: location}, outputs).script()


def _source_table(script: str) -> str:
    return script.split(";\n\n")[0]


def test_kafka_source_table_matches_its_golden_sql() -> None:
    """Only the source table: the rest of a Kafka job is the file job's (checked by the next test)."""
    location = KafkaSource(topic="transactions", bootstrap_servers="127.0.0.1:9092", group_id="feature-platform",
                           startup_mode="earliest-offset", bounded_mode="latest-offset")
    actual = _source_table(_job(location)) + ";\n"
    path = GOLDEN / "transactions_kafka_source.sql"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(actual)
    assert actual == path.read_text(), f"generated SQL differs from {path}; rerun with UPDATE_GOLDEN=1 and review"


def test_kafka_source_keeps_rowtime_watermark_and_classification_of_the_file_source() -> None:
    kafka = _job(KafkaSource("transactions", "127.0.0.1:9092", "g"))
    files = _job("file:///events/transactions")
    # everything after the source table is identical: same views, sinks and INSERTs
    assert kafka.split(";\n\n")[1:] == files.split(";\n\n")[1:]
    source = _source_table(kafka)
    assert "'connector' = 'kafka'" in source and "'format' = 'fp-lines'" in source
    assert "'scan.parallelism' = '1'" in source
    assert "file.path" not in source
    assert "_source_file AS CONCAT('kafka://', _kafka_topic" in source
    assert "WATERMARK FOR _rowtime AS _rowtime - INTERVAL '0 00:00:30.000' DAY TO SECOND(3)" in source
    # a new consumer group starts at the beginning instead of failing; unbounded unless asked
    assert "'properties.auto.offset.reset' = 'earliest'" in source and "scan.bounded.mode" not in source


def test_pinned_kafka_offsets_are_written_per_partition_in_order() -> None:
    location = KafkaSource("t", "127.0.0.1:9092", "g", startup_mode="specific-offsets", start_offsets={1: 5, 0: 0},
                           bounded_mode="specific-offsets", stop_offsets={0: 10, 1: 7})
    source = _source_table(_job(location))
    assert "'scan.startup.specific-offsets' = 'partition:0,offset:0;partition:1,offset:5'" in source
    assert "'scan.bounded.mode' = 'specific-offsets'" in source
    assert "'scan.bounded.specific-offsets' = 'partition:0,offset:10;partition:1,offset:7'" in source


def test_monitored_folder_sets_the_monitor_interval_and_bounded_does_not() -> None:
    monitored = _source_table(_job(FileSource("file:///events/t", monitor_interval=timedelta(seconds=1.5))))
    assert "'source.monitor-interval' = '1500ms'" in monitored
    assert "monitor-interval" not in _source_table(_job(FileSource("file:///events/t")))
    assert _job(FileSource("file:///events/t")) == _job("file:///events/t")


@pytest.mark.parametrize("bad", [
    {"startup_mode": "specific-offsets"},
    {"start_offsets": {0: 1}},
    {"bounded_mode": "specific-offsets"},
    {"topic": ""},
])
def test_inconsistent_kafka_locations_are_refused(bad: dict) -> None:
    fields = {"topic": "t", "bootstrap_servers": "127.0.0.1:9092", "group_id": "g", **bad}
    with pytest.raises(ValueError):
        KafkaSource(**fields)


def test_paths_and_uris_become_bounded_file_sources(tmp_path: Path) -> None:
    assert as_location(tmp_path) == FileSource(tmp_path.resolve().as_uri())
    assert as_location(str(tmp_path)) == FileSource(tmp_path.resolve().as_uri())
    assert as_location("s3://bucket/events") == FileSource("s3://bucket/events")
    assert as_location(tmp_path).local_path == tmp_path.resolve()
    assert FileSource("s3://bucket/events").local_path is None
    kafka = KafkaSource("t", "b:1", "g")
    assert as_location(kafka) is kafka
