"""The commit stage: Flink's finished CSV part files → one Delta append per batch, in the shared table layout.

PyFlink has no Delta sink, so Flink writes CSV part files with its exactly-once file sink and this module turns the
finished ones into a Delta commit with delta-rs (the JVM Delta connector targets Flink 1.x; see
docs/architecture.md).

* Only finished files are read: any path component starting with ``.`` or ``_`` is skipped (in-progress files and
  batch-mode staging folders are hidden, ``_SUCCESS`` markers are underscored).
* Columns are read with explicit Arrow types from :func:`pipelines.delta.schema.delta_schema`, never inferred. NULL is
  the unquoted literal ``\\N`` (Flink's ``csv.null-literal``); a real string ``\\N`` is quoted by Flink's writer and an
  empty string is written as nothing, so the two stay apart (``quoted_strings_can_be_null=False``). Timestamps are
  naive UTC text from Flink and become ``timestamp[us, UTC]``.
* ``ingested_at`` is one instant per commit.
* Part files may carry ``trailing`` columns after the Delta ones (the job's bookkeeping, e.g. accepted-event counts):
  they are read with their own types, returned in :class:`CommitResult` and never written to Delta, so the table's
  schema stays exactly :func:`~pipelines.delta.schema.delta_schema`.
* Exactly once: given ``app_id`` and ``txn_version``, the commit carries Delta's ``txn`` action (app id + version) and
  is skipped when the table's ``transaction_version(app_id)`` is already at or past ``txn_version`` (a replay after a
  crash). :mod:`pipelines.delta.commit` numbers the batches; see docs/exactly-once.md.
* A new table is created with the contract's schema, and its properties (:func:`table_properties`) are set through
  ``alter.set_table_properties``: delta-rs 1.6 refuses custom keys in ``configuration=`` at create/write time
  ("Error parsing property") but accepts them there.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake
from deltalake.exceptions import TableNotFoundError

from pipelines.contracts.model import Contract
from pipelines.delta.schema import TIMESTAMP, delta_schema, table_properties
from pipelines.layout import CSV_NULL_LITERAL, INGESTED_AT, finished_files


@dataclass(frozen=True)
class CommitResult:
    """What one commit did: rows appended, the table version they landed in (None when nothing was committed), and
    the ``trailing`` columns read from the part files (row-aligned with the rows, not written to Delta)."""

    table_path: Path
    rows: int
    version: int | None
    files: int
    trailing: pa.Table | None = None
    skipped: bool = False  # the table already holds this (app_id, txn_version): nothing was written


def read_csv_parts(files: list[Path], schema: pa.Schema) -> pa.Table:
    """Read header-less CSV part files with exactly the types of ``schema`` (timestamps read as UTC).

    Values may hold line breaks: Flink's CSV writer quotes a value holding CR or LF (a dead letter's raw line with a
    lone CR, a key decoded from a JSON ``\\r`` escape), so quoted values are allowed to span lines."""
    if not files:
        return schema.empty_table()
    read_types = {f.name: (pa.timestamp("us") if pa.types.is_timestamp(f.type) else f.type) for f in schema}
    options = pacsv.ConvertOptions(column_types=read_types, null_values=[CSV_NULL_LITERAL],
                                   strings_can_be_null=True, quoted_strings_can_be_null=False)
    read = pacsv.ReadOptions(column_names=schema.names)
    parse = pacsv.ParseOptions(newlines_in_values=True)
    tables = [pacsv.read_csv(path, read_options=read, parse_options=parse, convert_options=options)
              for path in _non_empty(files)]
    if not tables:
        return schema.empty_table()
    table = pa.concat_tables(tables)
    columns = [table[f.name].cast(f.type) if pa.types.is_timestamp(f.type) else table[f.name] for f in schema]
    return pa.Table.from_arrays(columns, schema=schema)


def _non_empty(files: list[Path]) -> Iterator[Path]:
    return (path for path in files if path.stat().st_size > 0)


def ensure_table(contract: Contract, table_path: Path) -> DeltaTable:
    """Open the contract's Delta table, creating it with the contract's schema and properties when absent."""
    try:
        table = DeltaTable(str(table_path))
    except TableNotFoundError:  # the normal first run; any other error (a damaged table) must surface, not be recreated
        table_path.mkdir(parents=True, exist_ok=True)
        table = DeltaTable.create(str(table_path), schema=delta_schema(contract), name=contract.table_name,
                                  description=contract.description)
    wanted = table_properties(contract)
    current = table.metadata().configuration
    if any(current.get(key) != value for key, value in wanted.items()):
        table.alter.set_table_properties(wanted, raise_if_not_exists=False)
        table = DeltaTable(str(table_path))
    return table


def append_once(table: DeltaTable, data: pa.Table, *, app_id: str | None = None, txn_version: int | None = None,
                metadata: Mapping[str, str] | None = None) -> tuple[int | None, bool]:
    """Append ``data`` as one commit; with ``app_id``/``txn_version``, at most once per (app id, version).

    Returns ``(version, skipped)``: the table version holding the rows (None when nothing was written) and whether
    the commit was skipped because the table already holds this transaction (a replayed batch).
    """
    if (app_id is None) != (txn_version is None):
        raise ValueError("app_id and txn_version go together")
    if app_id is not None and txn_version is not None:
        done = table.transaction_version(app_id)
        if done is not None and done >= txn_version:
            return None, True
    if data.num_rows == 0:
        return None, False
    transactions = [Transaction(app_id, txn_version)] if app_id is not None and txn_version is not None else None
    write_deltalake(table, data, mode="append",
                    commit_properties=CommitProperties(custom_metadata=dict(metadata or {}),
                                                       app_transactions=transactions))
    table.update_incremental()
    return table.version(), False


def part_file_schema(contract: Contract, trailing: pa.Schema) -> pa.Schema:
    """The columns of the contract's feature part files: the Delta table's (without ``ingested_at``), then
    ``trailing``."""
    return pa.schema([*(f for f in delta_schema(contract) if f.name != INGESTED_AT), *trailing])


def commit_part_files(contract: Contract, part_dir: Path | None, table_path: Path, *,
                      files: Sequence[Path] | None = None, ingested_at: datetime | None = None,
                      trailing: pa.Schema | None = None, app_id: str | None = None,
                      txn_version: int | None = None) -> CommitResult:
    """Append finished part files to the contract's Delta table as one commit.

    The files are ``files`` when given, else every finished part file under ``part_dir``. ``trailing`` names the
    columns the part files carry after the Delta ones; they come back in :attr:`CommitResult.trailing` and are not
    committed. ``app_id`` + ``txn_version`` make the commit idempotent (:func:`append_once`): a replay is skipped
    (``skipped``) but still returns the rows and trailing columns it read. Creates the table on first use. With no
    rows, no data commit is made (``version`` is the table's current one).
    """
    if files is None:
        files = finished_files(part_dir) if part_dir is not None else []
    files = list(files)
    schema = delta_schema(contract)
    rows_schema = part_file_schema(contract, pa.schema([]))
    extra = trailing if trailing is not None else pa.schema([])
    read = read_csv_parts(files, part_file_schema(contract, extra))
    rows = read.select(rows_schema.names)
    extra_rows = read.select(extra.names)
    table = ensure_table(contract, table_path)
    instant = (ingested_at or datetime.now(UTC)).astimezone(UTC)
    stamp = pa.array([instant] * rows.num_rows, TIMESTAMP)
    data = pa.Table.from_arrays([*rows.columns, stamp], schema=schema)
    metadata = {"contract": contract.name, "contract_version": contract.version,
                "contract_hash": contract.content_hash(), "part_files": str(len(files))}
    version, skipped = append_once(table, data, app_id=app_id, txn_version=txn_version, metadata=metadata)
    if version is None and not skipped:
        version = table.version()
    return CommitResult(table_path, rows.num_rows, version, len(files), extra_rows, skipped)
