"""Replacing a ``window_end`` range of a contract's table in one commit: what a backfill writes.

The rows already in the table whose ``window_end`` lies in ``[start, end)`` are replaced by the job's rows in that range
with one overwrite carrying a ``replaceWhere``-style predicate (delta-rs ``write_deltalake(mode="overwrite",
predicate=...)``). Rows outside the range are untouched; the commit is atomic, so readers see the old range or the new
one. delta-rs reports no removed rows for such an overwrite, so the rows replaced are counted before it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import CommitProperties, DeltaTable, write_deltalake

from pipelines.contracts.model import Contract
from pipelines.delta.schema import HIDDEN_SCHEMA, TIMESTAMP, delta_schema
from pipelines.delta.write import ensure_table, read_csv_parts
from pipelines.layout import ACCEPTED_IN_STEP, INGESTED_AT, WINDOW_END, finished_files


@dataclass(frozen=True)
class RangeReplaced:
    """What one range replacement did."""

    rows_written: int
    rows_outside_range: int
    rows_replaced: int
    version: int
    accepted: int  # accepted events summed from the part files' hidden column (all rows read, in range or not)
    reaches_newest_window: bool  # the range holds the table's newest window (before or after): reload online


def as_utc(moment: datetime) -> datetime:
    """A timezone-aware UTC instant; a naive one is taken as UTC (the platform's only zone)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def range_predicate(start: datetime, end: datetime) -> str:
    """The Delta predicate of the rows a backfill of ``[start, end)`` owns (``replaceWhere``)."""
    def literal(moment: datetime) -> str:
        return f"'{as_utc(moment).strftime('%Y-%m-%dT%H:%M:%S.%fZ')}'"
    return f"{WINDOW_END} >= {literal(start)} AND {WINDOW_END} < {literal(end)}"


def replace_window_range(contract: Contract, part_dir: Path, table_path: Path, start: datetime, end: datetime, *,
                         metadata: Mapping[str, str] | None = None) -> RangeReplaced:
    """Read the finished part files under ``part_dir``, keep the rows in ``[start, end)`` and replace that range of
    the table with them in one commit (the table is created when absent)."""
    schema = delta_schema(contract)
    rows_schema = pa.schema([f for f in schema if f.name != INGESTED_AT])
    read = read_csv_parts(finished_files(part_dir), pa.schema([*rows_schema, *HIDDEN_SCHEMA]))
    accepted = int(pc.sum(read[ACCEPTED_IN_STEP]).as_py() or 0) if read.num_rows else 0
    rows = read.select(rows_schema.names).filter(_in_range(read[WINDOW_END], start, end))
    table = ensure_table(contract, table_path)
    ends_before = _window_ends(table)
    replaced = int(pc.sum(_in_range(ends_before, start, end)).as_py() or 0)
    stamp = pa.array([datetime.now(UTC)] * rows.num_rows, TIMESTAMP)
    data = pa.Table.from_arrays([*rows.columns, stamp], schema=schema)
    commit_metadata = {**(metadata or {}), "range_start": start.isoformat(), "range_end": end.isoformat(),
                       "contract": contract.name, "contract_version": contract.version,
                       "contract_hash": contract.content_hash()}
    write_deltalake(table, data, mode="overwrite", predicate=range_predicate(start, end),
                    commit_properties=CommitProperties(custom_metadata=commit_metadata))
    after = DeltaTable(str(table_path))
    newest = [pc.max(ends).as_py() for ends in (ends_before, _window_ends(after)) if len(ends)]
    reaches = any(start <= moment < end for moment in newest if moment is not None)
    return RangeReplaced(rows_written=data.num_rows, rows_outside_range=read.num_rows - data.num_rows,
                         rows_replaced=replaced, version=after.version(), accepted=accepted,
                         reaches_newest_window=reaches)


def _in_range(ends: pa.ChunkedArray, start: datetime, end: datetime) -> pa.ChunkedArray:
    return pc.and_(pc.greater_equal(ends, pa.scalar(start, TIMESTAMP)), pc.less(ends, pa.scalar(end, TIMESTAMP)))


def _window_ends(table: DeltaTable) -> pa.ChunkedArray:
    """The table's ``window_end`` column (one column read: enough to count the range and find the newest window)."""
    return table.to_pyarrow_dataset().to_table(columns=[WINDOW_END])[WINDOW_END]
