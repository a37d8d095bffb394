"""``feature-platform stream`` end to end, over a watched folder and over a real Kafka broker.

One scenario per source kind, on the ``user_txn_stats`` contract with three chunks of events (consecutive 40-minute
spans, malformed lines mixed in):

1. the stream starts (CLI subprocess), chunk 0 is published: its windows reach Delta and the online store;
2. chunk 1 is published **while the job runs**: windows only its events can close appear in Delta and online;
3. SIGTERM: the stream stops with a savepoint and exits 0;
4. chunk 2 is published while nothing runs; the stream restarts from the savepoint and reads it;
5. once every window the watermark has closed is in Delta, SIGTERM again (exit 0), then: Delta equals the
   independent pandas reference (``test_flink_vs_reference``) row for row over the closed windows, with no duplicate;
   the online store holds each entity's newest reference window; every malformed line is dead-lettered exactly once.

The stream runs at parallelism 1: with one reader the closed windows are exactly those ending at or before the newest
event time minus the allowed lateness, which the reference can state.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from pipelines.config import Settings
from pipelines.contracts.model import Contract
from pipelines.sources.kafka import create_topic, produce_lines
from pipelines.testing.kafka_broker import KafkaBroker
from tests.jobs.stream_harness import (
    Chunk,
    StreamProcess,
    assert_delta_equals,
    assert_online_equals,
    closed_reference,
    dead_letter_payloads,
    delta_rows,
    event_chunks,
    online_has_window_after,
    publish_file,
    stream_env,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(3000)]

EVENTS_PER_CHUNK = 1_500
Publish = Callable[[Chunk, int], None]


@pytest.fixture(scope="module")
def contract(project_contract: Callable[[str], Contract]) -> Contract:
    return project_contract("user_txn_stats")


def run_stop_resume_scenario(tmp_path: Path, contract: Contract, env: dict[str, str], publish: Publish,
                             settings: Settings) -> None:
    chunks = event_chunks(contract, tmp_path / "generated", 3, EVENTS_PER_CHUNK, seed=21)
    log = tmp_path / "stream.log"

    first = StreamProcess(env, log, "--contract", contract.name)
    try:
        publish(chunks[0], 0)
        first.wait_for("chunk 0's windows in Delta", lambda: len(delta_rows(settings, contract)) > 0)
        entities = delta_rows(settings, contract)
        first.wait_for("chunk 0's values online",
                       lambda: online_has_window_after(settings, contract, entities, pd.Timestamp("2000-01-01")))

        publish(chunks[1], 1)  # while the job runs
        beyond_chunk0 = pd.Timestamp(chunks[0].last_event)
        first.wait_for("a window only chunk 1 can close, in Delta",
                       lambda: (delta_rows(settings, contract)["window_end"] > beyond_chunk0).any())
        first.wait_for("a window only chunk 1 can close, online",
                       lambda: online_has_window_after(settings, contract, delta_rows(settings, contract),
                                                       chunks[0].last_event))
        assert first.terminate_and_wait() == 0, first.tail()
    finally:
        first.close()
    assert "stopped with savepoint" in first.tail(20_000), first.tail()

    publish(chunks[2], 2)  # while nothing runs
    lines = [line for chunk in chunks for line in chunk.lines]
    expected = closed_reference(contract, lines)
    second = StreamProcess(env, log, "--contract", contract.name)
    try:
        second.wait_for(f"all {len(expected)} closed windows in Delta",
                        lambda: len(delta_rows(settings, contract)) >= len(expected))
        malformed = sorted(line for line in lines if line.startswith("not json"))
        second.wait_for("every malformed line dead-lettered",
                        lambda: len(dead_letter_payloads(settings, contract.source.name)) >= len(malformed))
        assert second.terminate_and_wait() == 0, second.tail()
    finally:
        second.close()
    log_text = log.read_text(errors="replace")
    assert "resuming from" in log_text and "savepoint-" in log_text, second.tail()

    assert_delta_equals(delta_rows(settings, contract), expected, contract)
    assert dead_letter_payloads(settings, contract.source.name) == malformed
    assert_online_equals(settings, contract, expected)


def test_stream_over_a_watched_folder_stops_and_resumes_exactly_once(tmp_path: Path, contract: Contract) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    folder = settings.events_dir / contract.source.name

    def publish(chunk: Chunk, index: int) -> None:
        publish_file(chunk, folder, f"{contract.source.name}-{index:05d}.jsonl")

    run_stop_resume_scenario(tmp_path, contract, stream_env(settings.data_dir), publish, settings)


def test_stream_over_kafka_stops_and_resumes_exactly_once(tmp_path: Path, contract: Contract,
                                                          kafka_broker: KafkaBroker) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    topic = f"stream-{tmp_path.name[-12:]}".replace("_", "-")
    create_topic(kafka_broker.bootstrap_servers, topic)
    env = stream_env(settings.data_dir, FP_KAFKA_BOOTSTRAP_SERVERS=kafka_broker.bootstrap_servers,
                     FP_KAFKA_TOPICS=f'{{"{contract.source.name}": "{topic}"}}', FP_KAFKA_GROUP_ID=topic)

    def publish(chunk: Chunk, _index: int) -> None:
        produce_lines(kafka_broker.bootstrap_servers, topic, (line.encode() for line in chunk.lines))

    run_stop_resume_scenario(tmp_path, contract, env, publish, settings)
