"""What an evaluation reads from a Delta table, kept between evaluations while the table's version stays the same.

The rollout controller measures a candidate every interval (a second in tests and benchmarks); its table changes only
when the stream commits (every step, minutes). Reading the whole snapshot and deriving the newest complete step and
its active entities each time made one evaluation cost far more than the interval on a busy machine. A
:class:`SnapshotCache` asks the table for its version (the Delta log, milliseconds) and re-reads the rows only when
it moved; what is derived from the rows (the newest complete step, its active entities) is cached with them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from pipelines.delta.tables import open_table


@dataclass
class Snapshot:
    """The rows of one table version, and values derived from them (computed once per version)."""

    version: int
    table: pa.Table
    derived: dict[str, Any] = field(default_factory=dict)

    def derive(self, name: str, compute: Callable[[pa.Table], Any]) -> Any:
        """``compute(table)``, computed at most once for this version."""
        if name not in self.derived:
            self.derived[name] = compute(self.table)
        return self.derived[name]


class SnapshotCache:
    """The newest snapshot of each Delta table path, re-read only when its version changed. Thread-safe."""

    def __init__(self) -> None:
        self._snapshots: dict[str, Snapshot] = {}
        self._lock = threading.Lock()

    def read(self, path: Path | str) -> Snapshot | None:
        """The newest snapshot of the table at ``path``; None when there is no table (errors propagate)."""
        handle = open_table(path)
        if handle is None:
            return None
        version = handle.version()
        key = str(path)
        with self._lock:
            cached = self._snapshots.get(key)
            if cached is not None and cached.version == version:
                return cached
        snapshot = Snapshot(version, handle.to_pyarrow_table())
        with self._lock:
            self._snapshots[key] = snapshot
        return snapshot
