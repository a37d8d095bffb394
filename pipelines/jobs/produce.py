"""``produce``: publish seeded, generated events to each contract source's Kafka topic.

Why: the compose stack's ``stream`` service reads Kafka, and a user trying the stack needs events to see features
move. The events come from the same generator as the embedded default (same profiles; the same seed gives the same
lines), with event times spread over ``duration`` and ending now, so online freshness means something in the demo.
Topics are the ones ``stream`` reads (``Settings.kafka_topic``); records go round-robin over ``partitions`` in
event-time order, so every partition stays ordered.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pipelines.config import Settings
from pipelines.contracts.valid import load_valid_contracts, select_contracts
from pipelines.sources.generator import SourceSpec, generate_lines, safe_jitter
from pipelines.sources.kafka import produce_lines


@dataclass(frozen=True)
class ProduceSummary:
    """Where the events went: records delivered per topic, and the event-time span they cover."""

    bootstrap_servers: str
    records_per_topic: dict[str, int]
    first_event: datetime
    last_event: datetime

    def to_dict(self) -> dict[str, Any]:
        return {"bootstrap_servers": self.bootstrap_servers, "records_per_topic": self.records_per_topic,
                "first_event": self.first_event.isoformat(), "last_event": self.last_event.isoformat()}


def produce_events(settings: Settings, *, events: int, seed: int = 0, duration: timedelta = timedelta(minutes=5),
                   end: datetime | None = None, contract: str | None = None, partitions: int = 2) -> ProduceSummary:
    """Generate ``events`` events per source read by the selected contracts and publish them to Kafka."""
    contracts = select_contracts(load_valid_contracts(settings.contracts_dir), contract, lambda c: c)
    start = (end or datetime.now(UTC)) - duration
    delivered = {}
    for source in sorted({c.source.name for c in contracts}):
        readers = [c for c in contracts if c.source.name == source]
        lines, _ = generate_lines(SourceSpec.from_contracts(readers), events, seed=seed, start=start,
                                  duration=duration, max_jitter=safe_jitter(readers))
        topic = settings.kafka_topic(source)
        delivered[topic] = produce_lines(settings.kafka_bootstrap_servers, topic,
                                         (line.encode() for line in lines.to_pylist()), partitions=partitions)
    return ProduceSummary(settings.kafka_bootstrap_servers, delivered, start, start + duration)
