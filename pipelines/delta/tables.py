"""Reading what a Delta table holds, for the jobs and commands that report on it (no writes here).

Every read the jobs make outside the commit stage goes through these functions, so ``deltalake`` stays inside this
package (enforced by a ruff banned-API rule) and a missing table always reads as ``None``, never as an exception.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError


def open_table(path: Path | str, version: int | None = None,
               storage_options: dict[str, str] | None = None) -> DeltaTable | None:
    """The Delta table at ``path`` (a folder or a URI; at ``version`` when given), or None when there is none."""
    try:
        return DeltaTable(str(path), version=version, storage_options=storage_options)
    except TableNotFoundError:
        return None


def table_version(path: Path | str) -> int | None:
    """The newest version of the table at ``path``; None when there is no table."""
    table = open_table(path)
    return table.version() if table is not None else None


def read_table(path: Path | str, columns: list[str] | None = None, *,
               storage_options: dict[str, str] | None = None) -> pa.Table | None:
    """The newest snapshot's rows (only ``columns`` when given); None when there is no table."""
    table = open_table(path, storage_options=storage_options)
    return table.to_pyarrow_table(columns=columns) if table is not None else None


def read_version(path: Path, version: int | None = None) -> tuple[int, pa.Table]:
    """The version number and rows of a Delta table (its current version unless ``version`` is given); raises
    ``TableNotFoundError`` when there is no table (callers check for the table first)."""
    table = DeltaTable(str(path), version=version)
    return table.version(), table.to_pyarrow_table()


def read_commit_rows(path: Path, first: int, last: int) -> pa.Table | None:
    """The rows Delta versions ``first..last`` appended, or None when one of them removed files (a delete, an
    overwrite, a compaction): then only a full snapshot reload gives the right answer."""
    import pyarrow.dataset as ds

    before = set(DeltaTable(str(path), version=first - 1).file_uris()) if first > 0 else set()
    table = DeltaTable(str(path), version=last)
    after = set(table.file_uris())
    if not before <= after:
        return None
    added = sorted(after - before)
    schema = table.schema().to_arrow()
    schema = pa.schema(schema) if not isinstance(schema, pa.Schema) else schema
    if not added:
        return schema.empty_table()
    return ds.dataset(added, schema=schema, format="parquet").to_table()


@dataclass(frozen=True)
class TableStatus:
    """What ``feature-platform status`` shows of one table."""

    version: int
    rows: int
    properties: dict[str, str]
    run_txn_version: int | None

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "rows": self.rows, "properties": self.properties,
                "run_txn_version": self.run_txn_version}


def table_status(path: Path, app_id: str | None = None) -> TableStatus | None:
    """Version, row count (from the log's add actions, no data read), properties and the ``txn`` version of
    ``app_id``; None when there is no table."""
    table = open_table(path)
    if table is None:
        return None
    actions = pa.table(table.get_add_actions(flatten=True)).to_pydict()
    rows = sum(n or 0 for n in actions.get("num_records", []))
    return TableStatus(table.version(), rows, dict(table.metadata().configuration),
                       table.transaction_version(app_id) if app_id else None)
