"""The writer for Feast's SQLite online store: a whole batch per transaction, made of multi-row upserts.

Layout (as Feast 0.67 writes it): one row per (entity key, feature) in ``<project>_<view>`` with ``value``,
``value_text`` and epoch-second ``event_ts`` / ``created_ts``, the way Feast's registered sqlite3 adapter stores
datetimes. Why multi-row upserts on one kept connection: SQLite runs a multi-row upsert ~1.7x faster than
``executemany`` of the one-row upsert, entity-major row order measured ~10 % faster, and a warm page cache survives
between batches.

Which write wins (:mod:`pipelines.feast_sync.online_writers`): SQLite decides in the upsert's ``WHERE`` clause; its
created time has Feast's one-second resolution, so a tie within the same second is resolved in favour of the incoming
row.
"""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipelines.feast_sync.online_writers import MARKER_FEATURE, MARKER_KEY, OnlineRows, WriteMode, WriteOutcome


def feast_sqlite_seconds(epoch_us: int, cache: dict[int, int]) -> int:
    """What Feast's sqlite3 adapter stores for a timestamp: ``int(naive_utc.timestamp())``. A naive datetime is read
    as *local* time, so off UTC the number is shifted; Feast reads it back through the same rule, and so must we."""
    seconds = cache.get(epoch_us)
    if seconds is None:
        naive = datetime.fromtimestamp(epoch_us / 1_000_000, UTC).replace(tzinfo=None)
        seconds = cache[epoch_us] = int(naive.timestamp())
    return seconds


#: Rows per multi-row upsert statement, about (whole entities; SQLite allows 32 766 parameters per statement).
SQLITE_ROWS_PER_STATEMENT = 500


class SqliteOnlineWriter:
    """Writes batches into Feast's SQLite online table of one feature view, one transaction per batch.

    Safe to call from several threads: batches are encoded in parallel with the write in progress, and the writes
    themselves take turns on a lock (SQLite has one writer at a time; waiting on the lock avoids SQLite's sleeping
    busy handler). Another process holding the database is waited for up to ``busy_timeout_s``."""

    kind = "sqlite"

    def __init__(self, db_path: Path, table_id: str, *, busy_timeout_s: float = 30.0) -> None:
        self.db_path = Path(db_path)
        self.table_id = table_id
        self.busy_timeout_s = busy_timeout_s
        quoted = '"' + table_id.replace('"', '""') + '"'
        self._upsert = (
            f"INSERT INTO {quoted} (entity_key, feature_name, value, value_text, event_ts, created_ts) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(entity_key, feature_name) DO UPDATE SET value = excluded.value, "
            "value_text = excluded.value_text, event_ts = excluded.event_ts, created_ts = excluded.created_ts")
        self._newer = (" WHERE excluded.event_ts > event_ts OR (excluded.event_ts = event_ts AND "
                       "(created_ts IS NULL OR excluded.created_ts >= created_ts))")
        self._lock = threading.Lock()
        self._read_marker = f"SELECT value_text FROM {quoted} WHERE entity_key = ? AND feature_name = ?"
        self._statements: dict[tuple[int, tuple[str, ...], str], str] = {}
        self._open: sqlite3.Connection | None = None

    def server_epoch(self) -> str:
        """A file never forgets what was committed to it: the epoch is constant."""
        return "sqlite"

    def write(self, batch: OnlineRows, mode: WriteMode = "newer") -> WriteOutcome:
        cache: dict[int, int] = {}
        events = [feast_sqlite_seconds(us, cache) for us in batch.event_us]
        created = [feast_sqlite_seconds(us, cache) for us in batch.created_us]
        columns = sorted((name, values, batch.texts[name]) for name, values in batch.features.items())
        names = tuple(name for name, _, _ in columns)
        # Entity-major order, features by name: rows arrive in primary-key (entity key, feature name) order when the
        # entity keys do, which keeps SQLite's B-tree inserts local (entity-major measured ~10 % faster).
        # One parameter group per entity: key, event, created, then value and text per feature (the statement
        # repeats the key and times by parameter number and names the features as literals: 3 + 2F parameters
        # instead of 6F). Filled by slice assignment, one C-level copy per column instead of a Python step per value.
        width = 3 + 2 * len(columns)
        params: list[Any] = [None] * (width * batch.rows)
        params[0::width] = batch.entity_keys
        params[1::width] = events
        params[2::width] = created
        for f, (_, values, texts) in enumerate(columns):
            params[3 + 2 * f::width] = values
            params[4 + 2 * f::width] = texts
        tail = self._newer if mode == "newer" else ""
        entities = max(1, SQLITE_ROWS_PER_STATEMENT // max(1, len(columns)))
        step = entities * width
        with self._lock:
            connection = self._connection()
            before = connection.total_changes
            try:
                with connection:  # one transaction per batch
                    for offset in range(0, len(params), step):
                        chunk = params[offset:offset + step]
                        connection.execute(self._statement(len(chunk) // width, names, tail), chunk)
            except sqlite3.Error:
                self._drop_connection()
                raise
            changed = connection.total_changes - before
        written = changed // max(1, len(batch.features))
        return WriteOutcome(written, batch.rows - written)

    def _statement(self, entities: int, names: tuple[str, ...], tail: str) -> str:
        """The upsert of ``entities`` × features rows in one statement: SQLite runs a multi-row upsert ~1.7x faster
        than ``executemany`` of the one-row upsert (the per-row statement reset and binding calls dominate there)."""
        key = (entities, names, tail)
        statement = self._statements.get(key)
        if statement is None:
            width = 3 + 2 * len(names)
            literals = ["'" + name.replace("'", "''") + "'" for name in names]
            rows = [f"(?{e * width + 1}, {literal}, ?{e * width + 4 + 2 * f}, ?{e * width + 5 + 2 * f}, "
                    f"?{e * width + 2}, ?{e * width + 3})"
                    for e in range(entities) for f, literal in enumerate(literals)]
            statement = self._statements[key] = self._upsert.replace("VALUES (?, ?, ?, ?, ?, ?)",
                                                                     "VALUES " + ", ".join(rows)) + tail
        return statement

    def _connection(self) -> sqlite3.Connection:
        """One connection kept between batches (used under the lock only), so its page cache stays warm."""
        if self._open is None:
            self._open = sqlite3.connect(self.db_path, timeout=self.busy_timeout_s, check_same_thread=False)
        return self._open

    def _drop_connection(self) -> None:
        if self._open is not None:
            self._open.close()
            self._open = None

    def read_marker(self) -> int | None:
        """The Delta version this view's online table reflects (see :meth:`write_marker`), None when unknown."""
        with sqlite3.connect(self.db_path, timeout=self.busy_timeout_s) as connection:
            row = connection.execute(self._read_marker, (MARKER_KEY, MARKER_FEATURE)).fetchone()
        connection.close()
        return None if row is None else int(row[0])

    def write_marker(self, version: int) -> None:
        """Record the Delta version loaded, as one extra row of the view's own table: Feast only ever reads rows by
        serialised entity key (which starts with a key count, never with this text), and dropping the table (``feast
        apply`` removing the view) drops the marker with the data it described."""
        with sqlite3.connect(self.db_path, timeout=self.busy_timeout_s) as connection:
            connection.execute(self._upsert, (MARKER_KEY, MARKER_FEATURE, b"", str(version), None, None))
        connection.close()

    def close(self) -> None:
        """Close the connection kept between batches (it is reopened if the writer is used again)."""
        with self._lock:
            self._drop_connection()
