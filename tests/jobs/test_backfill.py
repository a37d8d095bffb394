"""Streaming and backfill agree: the same generated SQL in streaming and in batch mode gives the same Delta rows.

One streaming run and one full-range backfill of the three example contracts over the same events (every event within
the allowed lateness, so streaming drops nothing), compared row for row; then a backfill of a one-hour range into a
copy of the streaming tables, which must replace exactly that range and leave every other row alone.
"""

from __future__ import annotations

import difflib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from pipelines.codegen.flink_sql import OutputPaths, build_job_sql
from pipelines.config import PROJECT_ROOT, Settings
from pipelines.contracts.load import load_contract
from pipelines.contracts.model import Contract
from pipelines.delta.schema import delta_schema
from pipelines.jobs.backfill import BackfillSummary, batch_job_sql, run_backfill
from pipelines.jobs.compute import RunSummary, run_contracts
from pipelines.sources.generator import SourceSpec, safe_jitter, write_events
from pipelines.sources.location import FileSource, KafkaSource

pytestmark = pytest.mark.e2e

CONTRACT_NAMES = ("user_txn_stats", "merchant_risk_profile", "session_clickstream")
EVENTS_PER_SOURCE = 20_000
#: Lines no contract can use, put between good ones: both modes must dead-letter them under the same reason.
BAD_LINES = ("plain text", "[1, 2, 3]", '{"unrelated": true}')


@dataclass(frozen=True)
class Events:
    folders: dict[str, Path]
    first: datetime
    last: datetime


@pytest.fixture(scope="module")
def contracts() -> list[Contract]:
    return [load_contract(PROJECT_ROOT / "contracts" / f"{name}.yaml").contract for name in CONTRACT_NAMES]


@pytest.fixture(scope="module")
def events(tmp_path_factory: pytest.TempPathFactory, contracts: list[Contract]) -> Events:
    root = tmp_path_factory.mktemp("backfill_events")
    folders, firsts, lasts = {}, [], []
    for source in sorted({c.source.name for c in contracts}):
        members = [c for c in contracts if c.source.name == source]
        generated = write_events(SourceSpec.from_contracts(members), root / source, EVENTS_PER_SOURCE, seed=11,
                                 duration=timedelta(hours=3), max_jitter=safe_jitter(members), entities=300)
        (path,) = generated.files
        lines = path.read_text().split("\n")[:-1]
        for offset, bad in enumerate(BAD_LINES):
            lines.insert(len(lines) * (offset + 1) // (len(BAD_LINES) + 1), bad)
        path.write_text("\n".join(lines) + "\n")
        folders[source] = root / source
        firsts.append(generated.first_event)
        lasts.append(generated.last_event)
    return Events(folders, min(firsts), max(lasts))


@pytest.fixture(scope="module")
def streaming(tmp_path_factory: pytest.TempPathFactory, contracts: list[Contract], events: Events) -> Settings:
    settings = Settings(data_dir=tmp_path_factory.mktemp("streaming"), parallelism=2)
    summary: RunSummary = run_contracts(contracts, events.folders, settings)
    assert summary.balanced
    for table in summary.tables:  # the premise of the comparison: streaming dropped nothing as late
        assert "late_event" not in table.dead_letters, table
        assert sum(table.dead_letters.values()) == len(BAD_LINES), table
    return settings


@pytest.fixture(scope="module")
def backfill(tmp_path_factory: pytest.TempPathFactory, contracts: list[Contract],
             events: Events) -> tuple[Settings, BackfillSummary]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("backfill"), parallelism=2)
    summary = run_backfill(contracts, events.folders, settings, start=events.first - timedelta(days=1),
                           end=events.last + timedelta(days=1))
    return settings, summary


def _rows(settings: Settings, contract: Contract, *, with_ingested_at: bool = False) -> pd.DataFrame:
    frame = DeltaTable(str(settings.delta_table_path(contract.table_name))).to_pandas()
    if not with_ingested_at:
        frame = frame.drop(columns="ingested_at")
    return frame.sort_values([*contract.entity.join_keys, "window_end"], ignore_index=True)


def _summed_doubles(contract: Contract) -> set[str]:
    """Features whose value is a sum of DOUBLEs: Flink adds them in another order in batch than in streaming."""
    return {f.name for f in contract.features if f.aggregation in ("sum", "avg") and f.type in ("double", "float")}


def _assert_same_rows(actual: pd.DataFrame, expected: pd.DataFrame, what: str, contract: Contract) -> None:
    """Same rows in the same order: every column equal, except sums of DOUBLEs, equal to 1e-12 relative.

    DOUBLE addition is not associative and batch mode adds in another order than streaming (measured on
    PyFlink 2.3: differences in the last bits on a share of the rows); every key, window, count, distinct count, min,
    max, last value and integer sum must be bit-identical.
    """
    assert len(actual) == len(expected), f"{what}: {len(actual)} rows vs {len(expected)}"
    assert list(actual.columns) == list(expected.columns), what
    tolerant = _summed_doubles(contract)
    for column in expected.columns:
        got, want = actual[column], expected[column]
        if column in tolerant:
            same = pd.Series(np.isclose(got.astype(float), want.astype(float), rtol=1e-12, atol=0, equal_nan=True))
        else:
            same = (got == want) | (got.isna() & want.isna())
        assert same.all(), f"{what}.{column}: {int((~same).sum())} row(s) differ, first:\n{actual[~same].head(3)}\n" \
                           f"expected:\n{expected[~same].head(3)}"


@pytest.mark.parametrize("name", CONTRACT_NAMES)
def test_backfill_rows_equal_streaming_rows(streaming: Settings, backfill: tuple[Settings, BackfillSummary],
                                            contracts: list[Contract], name: str) -> None:
    contract = next(c for c in contracts if c.name == name)
    expected = _rows(streaming, contract)
    assert len(expected) > 100, "the comparison needs a real number of window rows"
    _assert_same_rows(_rows(backfill[0], contract), expected, name, contract)


def test_backfill_accounts_for_every_line_like_streaming(backfill: tuple[Settings, BackfillSummary],
                                                         contracts: list[Contract]) -> None:
    _, summary = backfill
    assert summary.balanced
    assert [t.table for t in summary.tables] == [c.table_name for c in contracts]
    for table in summary.tables:
        assert sum(table.dead_letters.values()) == len(BAD_LINES), table
        assert table.rows_outside_range == 0
        assert table.rows_replaced == 0
        assert table.reaches_newest_window
    assert summary.to_dict()["balanced"] is True


def test_range_backfill_replaces_exactly_its_range(tmp_path: Path, streaming: Settings, contracts: list[Contract],
                                                   events: Events) -> None:
    settings = Settings(data_dir=tmp_path / "range", parallelism=2)
    shutil.copytree(streaming.delta_dir, settings.delta_dir)
    start = pd.Timestamp(events.first).ceil("1h").to_pydatetime() + timedelta(hours=1)
    end = start + timedelta(hours=1)
    contract = next(c for c in contracts if c.name == "user_txn_stats")
    ghosts = _ghost_rows(contract, [start + timedelta(minutes=5), end, start - timedelta(minutes=5)])
    write_deltalake(str(settings.delta_table_path(contract.table_name)), ghosts, mode="append")
    before = {c.name: _rows(settings, c, with_ingested_at=True) for c in contracts}

    summary = run_backfill(contracts, events.folders, settings, start=start, end=end)

    assert summary.balanced
    for table_run, c in zip(summary.tables, contracts, strict=True):
        after = _rows(settings, c, with_ingested_at=True)
        old = before[c.name]
        in_range = (after["window_end"] >= pd.Timestamp(start)) & (after["window_end"] < pd.Timestamp(end))
        was_in_range = (old["window_end"] >= pd.Timestamp(start)) & (old["window_end"] < pd.Timestamp(end))
        # outside the range: untouched, ingestion times included (the ghosts at `end` and before `start` stay)
        _assert_same_rows(after[~in_range].reset_index(drop=True), old[~was_in_range].reset_index(drop=True),
                          f"{c.name} outside the range", c)
        # inside: exactly the streaming rows of the range, freshly ingested (the in-range ghost is gone)
        reference = _rows(streaming, c)
        reference = reference[(reference["window_end"] >= pd.Timestamp(start))
                              & (reference["window_end"] < pd.Timestamp(end))].reset_index(drop=True)
        assert len(reference) > 0
        _assert_same_rows(after[in_range].drop(columns="ingested_at").reset_index(drop=True), reference,
                          f"{c.name} inside the range", c)
        assert (after.loc[in_range, "ingested_at"] > old["ingested_at"].max()).all()
        assert table_run.rows_written == len(reference)
        assert table_run.rows_replaced == int(was_in_range.sum())
        assert table_run.rows_outside_range > 0
        assert not table_run.reaches_newest_window
    ghost_key = contract.entity.join_keys[0]
    remaining = _rows(settings, contract)
    assert sorted(remaining.loc[remaining[ghost_key].str.startswith("ghost"), "window_end"]) == [
        pd.Timestamp(start - timedelta(minutes=5)), pd.Timestamp(end)]


def _ghost_rows(contract: Contract, window_ends: list[datetime]) -> pa.Table:
    """Rows of a key no event has, at the given window ends (features null): stale data a backfill must clear."""
    schema = delta_schema(contract)
    size = contract.max_window
    columns = {field.name: [None] * len(window_ends) for field in schema}
    for key in contract.entity.join_keys:
        columns[key] = [f"ghost{i}" for i in range(len(window_ends))]
    columns["window_end"] = window_ends
    columns["window_start"] = [end - size for end in window_ends]
    columns["ingested_at"] = [datetime(2020, 1, 1, tzinfo=UTC)] * len(window_ends)
    return pa.Table.from_pydict(columns, schema=schema)


def test_batch_sql_is_the_streaming_sql_without_the_late_rule(contracts: list[Contract]) -> None:
    outputs = {c.table_name: OutputPaths("file:///out/f", "file:///out/d") for c in contracts}
    streaming = build_job_sql(contracts, {"transactions": "file:///t", "clicks": "file:///c"}, outputs)
    batch = batch_job_sql(streaming, len(contracts))
    removed = [line for line in difflib.ndiff(streaming.script().splitlines(), batch.script().splitlines())
               if line.startswith(("- ", "+ "))]
    assert len(removed) == len(contracts)
    assert all(line.startswith("- ") and "late_event" in line for line in removed), removed


def test_backfill_command_replaces_a_range_and_prints_json(tmp_path: Path, events: Events,
                                                           contracts: list[Contract]) -> None:
    """`feature-platform backfill --json` in a process of its own: one contract, a range, the summary on stdout."""
    contract = next(c for c in contracts if c.name == "session_clickstream")
    root = next(iter(events.folders.values())).parent
    start = pd.Timestamp(events.first).ceil("1h")
    env = {**os.environ, "FP_DATA_DIR": str(tmp_path / "data"), "FP_PARALLELISM": "1"}
    command = [str(Path(sys.executable).with_name("feature-platform")), "backfill", "--from", start.isoformat(),
               "--to", (start + pd.Timedelta("30min")).strftime("%Y-%m-%dT%H:%M:%S"), "--contract", contract.name,
               "--events", str(root), "--json"]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)
    assert summary["balanced"] is True
    (table,) = summary["tables"]
    assert table["table"] == contract.table_name and table["rows_written"] > 0
    written = DeltaTable(str(tmp_path / "data" / "delta" / contract.table_name)).to_pandas()
    assert len(written) == table["rows_written"]
    assert written["window_end"].min() >= start and written["window_end"].max() < start + pd.Timedelta("30min")

    reversed_range = [*command[:3], command[5], "--to", command[3], *command[6:]]
    refused = subprocess.run(reversed_range, capture_output=True, text=True, env=env, timeout=120, check=False)
    assert refused.returncode == 2, refused.stderr[-2000:]  # typer's usage error, before any Flink work


_SOURCE_CORE = ("CREATE", "  _line ", "  _rowtime", "  WATERMARK")  # `_line_too_large` is per connector


def _is_source_table(statement: str) -> bool:
    return statement.startswith("CREATE TEMPORARY TABLE") and statement.splitlines()[0].endswith("__source` (")


def test_same_sql_everywhere_only_the_source_connector_differs(contracts: list[Contract]) -> None:
    """Files, a monitored folder, Kafka and batch mode run the same views, windows and sinks; sources differ only in
    where the lines come from (connector options and metadata columns), never in the line, rowtime or watermark."""
    outputs = {c.table_name: OutputPaths("file:///out/f", "file:///out/d") for c in contracts}
    files = build_job_sql(contracts, {"transactions": "file:///t", "clicks": "file:///c"}, outputs)
    variants = {
        "monitored folder": build_job_sql(contracts, {"transactions": FileSource("file:///t", timedelta(seconds=1)),
                                                      "clicks": "file:///c"}, outputs),
        "kafka": build_job_sql(contracts, {"transactions": KafkaSource("txns", "127.0.0.1:9092", "fp"),
                                           "clicks": KafkaSource("clicks", "127.0.0.1:9092", "fp")}, outputs),
    }
    assert len(files.ddl) == 2 + 4 * len(contracts)
    for name, job in variants.items():
        assert job.inserts == files.inserts, name
        assert len(job.ddl) == len(files.ddl), name
        for ours, theirs in zip(files.ddl, job.ddl, strict=True):
            if not _is_source_table(ours):
                assert ours == theirs, name
                continue
            core = [line for line in ours.splitlines() if line.startswith(_SOURCE_CORE)]
            assert len(core) == 4 and core == [line for line in theirs.splitlines() if line in core], name
    batch = batch_job_sql(files, len(contracts))
    assert batch.inserts == files.inserts
    assert [s for s in batch.ddl if _is_source_table(s)] == [s for s in files.ddl if _is_source_table(s)]
