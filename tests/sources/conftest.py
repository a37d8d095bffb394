"""A real Kafka broker for the source tests: Kafka 4.x in KRaft mode from its Maven Central jars, on 127.0.0.1.

Locally the Kafka tests skip with the reason when Maven or Maven Central is not available; under ``CI=true`` they fail
instead (they must run in CI).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from pipelines.jvm.jars import FLINK_KAFKA, KAFKA_BROKER, JarFetchError, fetch_jars
from pipelines.testing.kafka_broker import KafkaBroker, start_kafka_broker


def _jars_or_skip() -> None:
    try:
        fetch_jars(KAFKA_BROKER)
        fetch_jars(FLINK_KAFKA)
    except JarFetchError as error:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"Kafka jars unavailable (needs `mvn` and Maven Central): {error}")


@pytest.fixture(scope="module")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    """One broker per test module, stopped and its folders removed afterwards."""
    _jars_or_skip()
    broker = start_kafka_broker(tmp_path_factory.mktemp("kafka"), ready_timeout_s=90)
    try:
        yield broker
    finally:
        broker.stop()
