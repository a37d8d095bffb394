"""Kafka records of any content: the poison corpus of ``tests/jobs/test_line_edge_cases.py`` through a real topic and
the real job (parallelism 1, one partition), each record accepted or dead-lettered under the reference's reason.

Kafka record values are read with the platform's ``fp-lines`` format as file lines are (decoded with replacement, so
bytes that are not UTF-8 become ``invalid_utf8``; the ``too_large`` limit counts bytes), so the reasons are the same.
Both parse paths (``FP_PARSE_ONCE`` on and off) are run and must give the reference's reasons.
"""

from __future__ import annotations

import json

import pytest

from pipelines.config import Settings
from pipelines.jobs.compute import run_contracts
from pipelines.sources.kafka import create_topic, kafka_location, produce_lines
from pipelines.testing.kafka_broker import KafkaBroker
from tests.jobs.test_line_edge_cases import CONTRACTS, MAX_LINE_BYTES, _generated, _poison_lines, reference_classify

pytestmark = pytest.mark.e2e

TOPIC = "poison-lines"


@pytest.mark.parametrize("parse_once", ["on", "off"])
def test_every_record_ends_accepted_or_under_the_reference_reason(tmp_path, kafka_broker: KafkaBroker,
                                                                   parse_once: str) -> None:
    contract = CONTRACTS["poison"]
    generated = _generated("poison", tmp_path, seed=3)
    records = [*generated, *_poison_lines(json.loads(generated[-1]))]
    settings = Settings(data_dir=tmp_path / "data", parallelism=1, max_line_bytes=MAX_LINE_BYTES,
                        kafka_bootstrap_servers=kafka_broker.bootstrap_servers, kafka_group_id=f"poison-{parse_once}",
                        kafka_topics={contract.source.name: f"{TOPIC}-{parse_once}"}, parse_once=parse_once)
    create_topic(kafka_broker.bootstrap_servers, f"{TOPIC}-{parse_once}", partitions=1)
    assert produce_lines(kafka_broker.bootstrap_servers, f"{TOPIC}-{parse_once}", records) == len(records)

    summary = run_contracts([contract], {contract.source.name: kafka_location(settings, contract.source.name,
                                                                              bounded=True)}, settings)

    good, reasons = reference_classify(records, contract)
    table_run = next(t for t in summary.tables if t.table == contract.table_name)
    assert table_run.input_lines == len(records)
    assert dict(table_run.dead_letters) == dict(sorted(reasons.items()))
    assert table_run.events_accepted == len(good)
    assert table_run.balanced
    assert {"too_large", "invalid_utf8", "malformed_json"} <= set(reasons)
    assert reasons["invalid_utf8"] >= 2  # the records whose bytes are not UTF-8 (the gap the raw format had)
