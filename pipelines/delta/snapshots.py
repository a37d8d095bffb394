"""The newest Delta version of a contract's table and the one before it (time travel), read once into Arrow.

"The one before it" is the newest earlier version whose data files differ: metadata-only commits (table properties set
by the commit stage, for example) change nothing a data check could compare, so they are skipped. The walk back is
bounded (:data:`MAX_VERSIONS_BACK`) so a long run of metadata commits cannot make a check slow.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
from deltalake import DeltaTable

from pipelines.delta.tables import open_table

MAX_VERSIONS_BACK = 20


@dataclass(frozen=True)
class Snapshot:
    """Rows of the newest version and, when there is one, of the previous data version."""

    path: Path
    version: int
    table: pa.Table
    previous_version: int | None
    previous: pa.Table | None
    read_seconds: float


def _previous_data_version(path: Path, current: DeltaTable) -> DeltaTable | None:
    files = set(current.file_uris())
    version = current.version()
    for older in range(version - 1, max(version - 1 - MAX_VERSIONS_BACK, -1), -1):
        candidate = DeltaTable(str(path), version=older)
        if set(candidate.file_uris()) != files:
            return candidate
    return None


def read_snapshot(path: Path, *, with_previous: bool = True) -> Snapshot | None:
    """The newest version of the Delta table at ``path`` (``None`` when there is no table there)."""
    started = time.perf_counter()
    current = open_table(path)
    if current is None:
        return None
    table = current.to_pyarrow_table()
    previous = _previous_data_version(path, current) if with_previous else None
    previous_rows = previous.to_pyarrow_table() if previous is not None else None
    return Snapshot(path=path, version=current.version(), table=table,
                    previous_version=previous.version() if previous is not None else None, previous=previous_rows,
                    read_seconds=time.perf_counter() - started)
