"""``produce`` publishes the seeded generator's events to each source's topic of a real Kafka broker, ending now."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pipelines.config import Settings
from pipelines.contracts.valid import load_valid_contracts
from pipelines.errors import UsageError
from pipelines.jobs.produce import produce_events
from pipelines.sources.generator import SourceSpec, generate_lines, safe_jitter
from pipelines.sources.kafka import create_topic
from pipelines.testing.kafka_broker import KafkaBroker

pytestmark = pytest.mark.e2e


def _consume_all(bootstrap: str, topic: str, expected: int, timeout_s: float = 60.0) -> list[tuple[int, bytes]]:
    from confluent_kafka import Consumer

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"test-{topic}", "auto.offset.reset": "earliest",
                         "enable.auto.commit": False})
    consumer.subscribe([topic])
    records: list[tuple[int, bytes]] = []
    deadline = datetime.now(UTC) + timedelta(seconds=timeout_s)
    try:
        while len(records) < expected and datetime.now(UTC) < deadline:
            message = consumer.poll(1.0)
            if message is not None and message.error() is None:
                records.append((message.partition(), message.value()))
    finally:
        consumer.close()
    return records


def test_produce_publishes_each_sources_generated_events_ending_now(kafka_broker: KafkaBroker, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", kafka_bootstrap_servers=kafka_broker.bootstrap_servers,
                        kafka_topics={"transactions": "txn-in"})
    for topic in ("txn-in", "clicks"):
        create_topic(kafka_broker.bootstrap_servers, topic, partitions=2)
    end = datetime.now(UTC).replace(microsecond=0)
    summary = produce_events(settings, events=300, seed=3, duration=timedelta(minutes=2), end=end, partitions=2)
    assert summary.records_per_topic == {"clicks": 300, "txn-in": 300}
    assert (summary.first_event, summary.last_event) == (end - timedelta(minutes=2), end)

    contracts = load_valid_contracts(settings.contracts_dir)
    for source, topic in (("transactions", "txn-in"), ("clicks", "clicks")):
        readers = [c for c in contracts if c.source.name == source]
        expected, _ = generate_lines(SourceSpec.from_contracts(readers), 300, seed=3, start=end - timedelta(minutes=2),
                                     duration=timedelta(minutes=2), max_jitter=safe_jitter(readers))
        lines = [line.rstrip("\n").encode() for line in expected.to_pylist()]
        records = _consume_all(kafka_broker.bootstrap_servers, topic, 300)
        assert sorted(value for _, value in records) == sorted(lines)
        for partition in (0, 1):  # round-robin in event-time order: each partition keeps the generator's order
            assert [value for p, value in records if p == partition] == lines[partition::2]
        event_time = readers[0].source.event_time
        times = [datetime.fromisoformat(json.loads(line)[event_time]) for line in lines]
        assert all(end - timedelta(minutes=3) <= t.astimezone(UTC) <= end + timedelta(minutes=1) for t in times)


def test_produce_names_an_unknown_contract(kafka_broker: KafkaBroker, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", kafka_bootstrap_servers=kafka_broker.bootstrap_servers)
    with pytest.raises(UsageError, match="no contract 'nope'"):
        produce_events(settings, events=10, contract="nope")
