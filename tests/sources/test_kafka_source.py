"""Kafka end to end: events published to a real broker, read by the generated job in bounded mode, equal files.

The same seeded events (good ones and every kind of defect) are written to a JSON-lines file and published to a
two-partition topic (round-robin, each partition in file order). One run reads the file, one the topic, each through
:func:`pipelines.jobs.run.run_contracts`. The Delta tables must hold the same rows (DOUBLE aggregates within 1e-9
relative: the partitions change the summation order), the dead letters the same reasons, and both runs must account
for every line. The Kafka run's offsets are pinned, so it reads exactly the records counted.

Timing-free defects only: whether an out-of-order event is a ``late_event`` depends on how far the watermark had moved
when it arrived, which differs between a file read and a Kafka fetch (measured: the generator's hour-late events were
late from the file and on time from Kafka when one reader fetched both partitions at once). The Kafka run uses
parallelism 1 so that the watermark its late rule sees is the one its windows use (docs/sources.md).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from deltalake import DeltaTable

from pipelines.config import PROJECT_ROOT, Settings
from pipelines.contracts.load import load_contract
from pipelines.contracts.model import Contract
from pipelines.jobs.compute import RunSummary, run_contracts
from pipelines.layout import finished_files
from pipelines.sources.generator import SourceSpec, safe_jitter, write_events
from pipelines.sources.kafka import create_topic, kafka_location, produce_files
from pipelines.testing.kafka_broker import KafkaBroker

pytestmark = pytest.mark.e2e

CONTRACT_NAMES = ("user_txn_stats", "merchant_risk_profile")
EVENTS = 10_000
PARTITIONS = 2


@dataclass(frozen=True)
class Runs:
    contracts: list[Contract]
    lines: int
    files: RunSummary
    kafka: RunSummary
    files_settings: Settings
    kafka_settings: Settings


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, kafka_broker: KafkaBroker) -> Runs:
    root = tmp_path_factory.mktemp("kafka_vs_files")
    contracts = [load_contract(PROJECT_ROOT / "contracts" / f"{name}.yaml").contract for name in CONTRACT_NAMES]
    (source,) = {c.source.name for c in contracts}
    path = write_events(SourceSpec.from_contracts(contracts), root / "events", EVENTS, seed=11,
                        duration=timedelta(hours=2), max_jitter=safe_jitter(contracts), entities=200).files[0]
    lines = path.read_text().split("\n")[:-1]
    lines += _bad_lines(contracts[0], lines[-1])
    path.write_text("\n".join(lines) + "\n")
    files_settings = Settings(data_dir=root / "files", parallelism=2)
    # p=1: one reader holds every partition, so the watermark the late rule sees is the one the windows use (see
    # docs/sources.md, "Parallelism and idle partitions", for what p>1 risks)
    kafka_settings = Settings(data_dir=root / "kafka", parallelism=1, kafka_group_id="kafka-vs-files",
                              kafka_bootstrap_servers=kafka_broker.bootstrap_servers,
                              kafka_topics={source: "transactions-test"})
    create_topic(kafka_broker.bootstrap_servers, "transactions-test", partitions=PARTITIONS)
    produced = produce_files(kafka_broker.bootstrap_servers, "transactions-test", [path], partitions=PARTITIONS)
    assert produced == len(lines)
    files = run_contracts(contracts, {source: root / "events"}, files_settings)
    kafka = run_contracts(contracts, {source: kafka_location(kafka_settings, source, bounded=True)}, kafka_settings)
    return Runs(contracts, len(lines), files, kafka, files_settings, kafka_settings)


def _bad_lines(contract: Contract, last_line: str) -> list[str]:
    """One line per defect whose verdict does not depend on timing (lateness does: see the module docstring)."""
    template = json.loads(last_line)
    key, event_time = contract.entity.join_keys[0], contract.source.event_time
    return ["", "plain text", "[1, 2, 3]", '{"truncated": ',
            json.dumps({k: v for k, v in template.items() if k != key}),
            json.dumps({k: v for k, v in template.items() if k != event_time}),
            json.dumps({**template, event_time: "yesterday"}),
            json.dumps({**template, "amount": "abc"})]


def test_kafka_run_accounts_for_every_record_like_the_file_run(runs: Runs) -> None:
    for files_table, kafka_table in zip(runs.files.tables, runs.kafka.tables, strict=True):
        assert kafka_table.input_lines == files_table.input_lines == runs.lines
        assert kafka_table.balanced and files_table.balanced
        assert dict(kafka_table.dead_letters) == dict(files_table.dead_letters)
        assert {"malformed_json", "bad_event_time", "bad_amount", "missing_user_id", "missing_event_ts"} <= set(
            kafka_table.dead_letters), kafka_table.dead_letters
        assert kafka_table.events_accepted == files_table.events_accepted > 0


@pytest.mark.parametrize("name", CONTRACT_NAMES)
def test_kafka_delta_rows_equal_the_file_rows(runs: Runs, name: str) -> None:
    contract = next(c for c in runs.contracts if c.name == name)
    frames = []
    for settings in (runs.files_settings, runs.kafka_settings):
        frame = DeltaTable(str(settings.delta_table_path(contract.table_name))).to_pandas()
        keys = [*contract.entity.join_keys, "window_start", "window_end"]
        frames.append(frame.drop(columns=["ingested_at"]).sort_values(keys).reset_index(drop=True))
    from_files, from_kafka = frames
    assert len(from_files) > 0
    assert list(from_kafka.columns) == list(from_files.columns)
    assert len(from_kafka) == len(from_files)
    for column in from_files.columns:
        if pd.api.types.is_float_dtype(from_files[column]):
            np.testing.assert_allclose(from_kafka[column].to_numpy(), from_files[column].to_numpy(), rtol=1e-9,
                                       equal_nan=True, err_msg=column)
        else:
            assert from_kafka[column].equals(from_files[column]), column


def test_kafka_dead_letters_name_topic_partition_and_offset(runs: Runs) -> None:
    table = runs.kafka.tables[0]
    folder = runs.kafka.run_dir / table.table / "dead_letters"
    text = "".join(part.read_text() for part in finished_files(Path(folder)))
    assert "kafka://transactions-test/0/" in text and "kafka://transactions-test/1/" in text
