"""Dead letters: one Delta table per source (``dead_letters_<source>``) holding every line a contract could not use.

The Flink job writes each contract's rejected lines (raw line, reason, source name and file, processing time) as CSV
part files (see :mod:`pipelines.codegen.flink_sql`). The commit stage reads the finished ones of all contracts reading
a source and appends them to that source's table, adding which contract rejected the line and ``ingested_at``. A line
that two contracts reject is stored once per contract: the reason may differ between them.

The counts per contract and reason are what the run summary, ``feature-platform status`` and the Prometheus metric
``feature_platform_dead_letters`` report (:func:`dead_letter_counts`, :func:`prometheus_text`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path

import pyarrow as pa
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError

from pipelines.delta.schema import SQL_ARROW_TYPES, TIMESTAMP
from pipelines.delta.write import read_csv_parts
from pipelines.layout import DEAD_LETTER_COLUMNS, finished_files

TABLE_PREFIX = "dead_letters_"
#: Columns of the Flink part files, in order, with their Arrow types.
PART_SCHEMA = pa.schema([(name, SQL_ARROW_TYPES[sql_type]) for name, sql_type in DEAD_LETTER_COLUMNS])
#: The Delta table's columns: the raw line is ``payload``.
SCHEMA = pa.schema([
    pa.field("contract", pa.string(), nullable=False),
    pa.field("reason", pa.string(), nullable=False),
    pa.field("source_name", pa.string(), nullable=False),
    pa.field("source_file", pa.string()),
    pa.field("processed_at", TIMESTAMP),
    pa.field("payload", pa.string()),
    pa.field("ingested_at", TIMESTAMP, nullable=False),
])


def table_name(source: str) -> str:
    """The dead-letter table of ``source``."""
    return f"{TABLE_PREFIX}{source}"


def table_properties(source: str) -> dict[str, str]:
    return {"feature_platform.dead_letters.source": source, "feature_platform.dead_letters.schema": "1"}


def to_delta_rows(parts: Mapping[str, pa.Table], ingested_at: datetime) -> pa.Table:
    """Part-file rows per contract table → rows of the dead-letter table (``contract`` and ``ingested_at`` added)."""
    tables = []
    for contract, rows in parts.items():
        n = rows.num_rows
        if n == 0:
            continue
        tables.append(pa.Table.from_arrays(
            [pa.array([contract] * n, pa.string()), rows["reason"], rows["source_name"], rows["source_file"],
             rows["processed_at"], rows["line"], pa.array([ingested_at] * n, TIMESTAMP)], schema=SCHEMA))
    return pa.concat_tables(tables) if tables else SCHEMA.empty_table()


def counts_by_reason(parts: Mapping[str, pa.Table]) -> dict[str, dict[str, int]]:
    """``{contract table: {reason: n}}`` of part-file rows."""
    return {contract: _reasons(rows) for contract, rows in parts.items()}


def _reasons(rows: pa.Table) -> dict[str, int]:
    return dict(sorted(Counter(rows["reason"].to_pylist()).items()))


def ensure_table(source: str, path: Path) -> DeltaTable:
    """Open the source's dead-letter table, creating it (schema and properties) when absent."""
    try:
        table = DeltaTable(str(path))
    except TableNotFoundError:
        path.mkdir(parents=True, exist_ok=True)
        table = DeltaTable.create(str(path), schema=SCHEMA, name=table_name(source),
                                  description=f"Lines of source `{source}` that a contract could not use, and why.")
    wanted = table_properties(source)
    if any(table.metadata().configuration.get(k) != v for k, v in wanted.items()):
        table.alter.set_table_properties(wanted, raise_if_not_exists=False)
        table = DeltaTable(str(path))
    return table


def dead_letters_by_reason(part_dir: Path) -> dict[str, int]:
    """``{reason: n}`` of the finished dead-letter part files under ``part_dir`` (a backfill's, kept in its folder)."""
    return _reasons(read_csv_parts(finished_files(part_dir), PART_SCHEMA))


def dead_letter_counts(path: Path) -> dict[str, dict[str, int]]:
    """``{contract: {reason: n}}`` in a dead-letter table (empty when the table does not exist)."""
    try:
        table = DeltaTable(str(path))
    except TableNotFoundError:
        return {}
    data = table.to_pyarrow_table(columns=["contract", "reason"])
    counts: dict[str, Counter[str]] = {}
    for contract, reason in zip(data["contract"].to_pylist(), data["reason"].to_pylist(), strict=True):
        counts.setdefault(contract, Counter())[reason] += 1
    return {contract: dict(sorted(found.items())) for contract, found in sorted(counts.items())}


def prometheus_text(counts_per_source: Mapping[str, Mapping[str, Mapping[str, int]]],
                    extra: Sequence[tuple[str, str, Mapping[str, str], float]] = ()) -> str:
    """Prometheus exposition text: ``feature_platform_dead_letters{source,contract,reason}`` plus ``extra`` gauges
    given as ``(name, help, labels, value)``."""
    from prometheus_client import CollectorRegistry, Gauge, generate_latest

    registry = CollectorRegistry()
    gauge = Gauge("feature_platform_dead_letters", "Dead-lettered lines committed to Delta, by reason.",
                  ["source", "contract", "reason"], registry=registry)
    for source, per_contract in counts_per_source.items():
        for contract, reasons in per_contract.items():
            for reason, n in reasons.items():
                gauge.labels(source=source, contract=contract, reason=reason).set(n)
    gauges: dict[str, Gauge] = {}
    for name, help_text, labels, value in extra:
        if name not in gauges:
            gauges[name] = Gauge(name, help_text, sorted(labels), registry=registry)
        gauges[name].labels(**labels).set(value)
    return generate_latest(registry).decode("utf-8")
