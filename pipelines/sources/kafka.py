"""Kafka from Python: build a source location from settings, publish JSON lines, and pin a bounded read's offsets.

The Flink job reads Kafka itself (the connector); Python only touches Kafka at the edges:

* :func:`kafka_location`: the :class:`~pipelines.sources.location.KafkaSource` of a contract source from
  :class:`~pipelines.config.Settings` (bootstrap servers, group id, topic per source).
* :func:`create_topic` / :func:`produce_lines` / :func:`produce_files`: publish events (tests, benchmarks, replays).
  Each line is one record; records go round-robin over the partitions in line order, so every partition stays in the
  order of the file.
* :func:`pin_offsets`: turn a bounded location into exact per-partition start and stop offsets before the job starts,
  so the run reads exactly the records it counted (``input_lines`` of the run summary) even while producers keep
  writing. Counting by offsets assumes a plain topic: transaction markers and compaction leave offsets without a record.

confluent-kafka is imported inside the functions: the embedded default never imports it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.errors import PlatformError, Transient
from pipelines.sources.location import KafkaSource

if TYPE_CHECKING:
    from confluent_kafka import Consumer, TopicPartition

    from pipelines.config import Settings


class KafkaSourceError(PlatformError, Transient):
    """Kafka did not answer or refused a request; the message names the broker and the topic."""


def kafka_location(settings: Settings, source_name: str, *, bounded: bool = False) -> KafkaSource:
    """Where ``source_name`` is read from in Kafka, as configured. Bounded: from the group's committed offsets (the
    beginning for a new group) to the end offsets at start (backfills, tests); unbounded: continuous."""
    return KafkaSource(topic=settings.kafka_topic(source_name), bootstrap_servers=settings.kafka_bootstrap_servers,
                       group_id=settings.kafka_group_id, startup_mode="group-offsets",
                       bounded_mode="latest-offset" if bounded else "unbounded")


def create_topic(bootstrap_servers: str, topic: str, *, partitions: int = 1, timeout_s: float = 30.0) -> None:
    """Create ``topic`` (one replica) and wait until it exists."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap_servers})
    futures = admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)],
                                  request_timeout=timeout_s)
    try:
        futures[topic].result(timeout=timeout_s)
    except Exception as error:
        raise KafkaSourceError(f"could not create topic {topic!r} on {bootstrap_servers}: {error}") from error


def produce_lines(bootstrap_servers: str, topic: str, lines: Iterable[bytes], *, partitions: int = 1,
                  timeout_s: float = 60.0) -> int:
    """Publish each line (without its trailing newline) as one record; return how many were delivered."""
    from confluent_kafka import Producer

    failures: list[str] = []

    def on_delivery(error: object, _message: object) -> None:
        if error is not None:
            failures.append(str(error))

    producer = Producer({"bootstrap.servers": bootstrap_servers, "linger.ms": 20, "enable.idempotence": True,
                         "compression.type": "lz4"})
    count = 0
    for count, line in enumerate(lines, start=1):
        value = line[:-1] if line.endswith(b"\n") else line
        while True:
            try:
                producer.produce(topic, value=value, partition=(count - 1) % partitions, on_delivery=on_delivery)
                break
            except BufferError:  # local queue full: let deliveries drain, then retry this record
                producer.poll(0.1)
    remaining = producer.flush(timeout_s)
    if remaining or failures:
        raise KafkaSourceError(f"{remaining} record(s) undelivered and {len(failures)} failed for {topic!r} on "
                               f"{bootstrap_servers}: {failures[:3]}")
    return count


def produce_files(bootstrap_servers: str, topic: str, files: Sequence[Path], *, partitions: int = 1,
                  timeout_s: float = 60.0) -> int:
    """Publish every line of ``files`` in order (what a file source would read, one record per line)."""

    def lines() -> Iterable[bytes]:
        for file in files:
            with file.open("rb") as handle:
                yield from handle

    return produce_lines(bootstrap_servers, topic, lines(), partitions=partitions, timeout_s=timeout_s)


def pin_offsets(location: KafkaSource, *, timeout_s: float = 30.0) -> tuple[KafkaSource, int]:
    """Exact start and stop offsets per partition for a bounded read, and the number of records between them.

    Start: the given specific offsets, else the group's committed offsets (the log start for a new group or
    ``earliest-offset``), else the log end for ``latest-offset``. Stop: the given specific offsets, else the log end
    now (``latest-offset``), or the committed offsets (``group-offsets``). Raises ValueError for an unbounded location.
    """
    if not location.bounded:
        raise ValueError(f"topic {location.topic!r}: only a bounded Kafka source has offsets to pin")
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": location.bootstrap_servers, "group.id": location.group_id,
                         "enable.auto.commit": False})
    try:
        metadata = consumer.list_topics(location.topic, timeout=timeout_s).topics.get(location.topic)
        if metadata is None or metadata.error is not None or not metadata.partitions:
            raise KafkaSourceError(f"topic {location.topic!r} not found on {location.bootstrap_servers}")
        partitions = sorted(metadata.partitions)
        ends = {p: consumer.get_watermark_offsets(TopicPartition(location.topic, p), timeout=timeout_s)
                for p in partitions}
        committed = {}
        if "group-offsets" in (location.startup_mode, location.bounded_mode):
            found = _committed(consumer, [TopicPartition(location.topic, p) for p in partitions], timeout_s)
            committed = {tp.partition: tp.offset for tp in found if tp.offset >= 0}
    except KafkaSourceError:
        raise
    except Exception as error:
        raise KafkaSourceError(f"could not read the offsets of {location.topic!r} on "
                               f"{location.bootstrap_servers}: {error}") from error
    finally:
        consumer.close()
    start = {p: _start(location, p, ends[p], committed) for p in partitions}
    stop = {p: max(start[p], _stop(location, p, ends[p], committed)) for p in partitions}
    pinned = KafkaSource(location.topic, location.bootstrap_servers, location.group_id,
                         startup_mode="specific-offsets", start_offsets=start,
                         bounded_mode="specific-offsets", stop_offsets=stop)
    return pinned, sum(stop[p] - start[p] for p in partitions)


def _committed(consumer: Consumer, partitions: list[TopicPartition], timeout_s: float) -> list[TopicPartition]:
    """The group's committed offsets, retried while the group coordinator is still being set up.

    The first group on a fresh broker creates ``__consumer_offsets``; until it is ready the broker answers
    NOT_COORDINATOR or COORDINATOR_LOAD_IN_PROGRESS, which are transient.
    """
    from confluent_kafka import KafkaError, KafkaException

    transient = {KafkaError.NOT_COORDINATOR, KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
                 KafkaError.COORDINATOR_NOT_AVAILABLE, KafkaError._TIMED_OUT}
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return consumer.committed(partitions, timeout=max(1.0, deadline - time.monotonic()))
        except KafkaException as error:
            code = error.args[0].code() if error.args else None
            if code not in transient or time.monotonic() >= deadline:
                raise
            time.sleep(0.2)


def _start(location: KafkaSource, partition: int, ends: tuple[int, int], committed: dict[int, int]) -> int:
    low, high = ends
    if location.start_offsets is not None and partition in location.start_offsets:
        return min(max(location.start_offsets[partition], low), high)
    if location.startup_mode == "latest-offset":
        return high
    if location.startup_mode == "group-offsets" and partition in committed:
        return min(max(committed[partition], low), high)
    return low


def _stop(location: KafkaSource, partition: int, ends: tuple[int, int], committed: dict[int, int]) -> int:
    low, high = ends
    if location.stop_offsets is not None and partition in location.stop_offsets:
        return min(location.stop_offsets[partition], high)
    if location.bounded_mode == "group-offsets":
        return committed.get(partition, low)
    return high
