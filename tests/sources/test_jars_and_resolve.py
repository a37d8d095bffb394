"""Connector jars (fetched with mvn, cached) and the checks a bounded run makes on its sources before starting."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest

from pipelines.errors import UsageError
from pipelines.flink.environment import FlinkOptions, flink_configuration
from pipelines.jvm.jars import FLINK_KAFKA, JarFetchError, fetch_jars, jar_sets
from pipelines.sources.location import FileSource, KafkaSource
from pipelines.sources.resolve import resolve_bounded_sources


def test_the_known_jar_sets_and_an_unknown_one() -> None:
    assert {"flink-kafka", "kafka-broker"} <= set(jar_sets())
    with pytest.raises(JarFetchError, match="unknown jar set"):
        fetch_jars("no-such-set")


def test_the_kafka_connector_jar_is_fetched_once_and_then_cached(tmp_path: Path) -> None:
    try:
        (jar,) = fetch_jars(FLINK_KAFKA)
    except JarFetchError as error:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"needs mvn and Maven Central: {error}")
    assert jar.name.startswith("flink-sql-connector-kafka-") and jar.stat().st_size > 1_000_000
    assert fetch_jars(FLINK_KAFKA) == (jar,)  # cached: same path, no second fetch


def test_jars_go_into_pipeline_jars_as_file_urls_and_only_when_given(tmp_path: Path) -> None:
    jar = tmp_path / "connector.jar"
    with_jar = flink_configuration(FlinkOptions(checkpoint_dir=tmp_path, jars=(jar, jar)))
    assert with_jar["pipeline.jars"] == f"{jar.as_uri()};{jar.as_uri()}"
    assert "pipeline.jars" not in flink_configuration(FlinkOptions(checkpoint_dir=tmp_path))


def test_a_bounded_run_counts_file_sources_and_needs_no_jar(tmp_path: Path) -> None:
    resolved = resolve_bounded_sources({"a": tmp_path, "b": FileSource.local(tmp_path / "x.jsonl")},
                                       lambda path: len(str(path)))
    assert resolved.jars == ()
    assert resolved.input_lines == {"a": len(str(tmp_path)), "b": len(str(tmp_path / "x.jsonl"))}
    assert resolved.locations["a"] == FileSource(tmp_path.as_uri())


@pytest.mark.parametrize("location", [
    FileSource("file:///events", monitor_interval=timedelta(seconds=1)),
    KafkaSource("t", "127.0.0.1:9", "g"),
])
def test_a_bounded_run_refuses_sources_that_never_end(location: FileSource | KafkaSource) -> None:
    with pytest.raises(UsageError, match="unbounded"):
        resolve_bounded_sources({"events": location}, lambda _path: 0)


def test_a_bounded_run_refuses_files_it_cannot_count() -> None:
    with pytest.raises(UsageError, match="cannot count"):
        resolve_bounded_sources({"events": FileSource("s3://bucket/events")}, lambda _path: 0)
