"""Batch writers that put rows into Feast's SQLite and Redis online stores exactly as Feast itself would store them.

Why: ``FeatureStore.write_to_online_store`` builds a protobuf object per value and writes one row (SQLite) or one
command (Redis) at a time from Python; here that ran at about 5 k entities/s. These writers encode a whole Arrow batch
column by column and write it in one SQLite transaction (multi-row upserts) or one round trip of pre-framed Redis
commands (one Lua call per 128 entities), so they are many times faster (``docs/online-loading.md``, Speed), and
they store *the same bytes* under *the same keys* as Feast 0.67, so ``FeatureStore.get_online_features``
reads them back unchanged (``tests/feast_sync/test_online_writers.py`` compares both stores byte for byte):

* entity keys: Feast's serialisation version 3 (``feast.infra.key_encoding_utils.serialize_entity_key``): key count,
  then the join-key names sorted, then their values, each ``<type><length><bytes>`` in little endian;
* values: serialised ``feast.types.Value`` protobufs, encoded here directly (a tag byte, then a fixed-width number, a
  varint or a length-prefixed string); null and NaN become the empty message, as Feast's conversion makes them;
* SQLite: one row per (entity key, feature) in ``<project>_<view>`` with ``value_text`` and epoch-second ``event_ts`` /
  ``created_ts``, the way Feast's registered sqlite3 adapter stores datetimes;
* Redis: one hash per entity key (serialised key + project name), a field per feature named by the murmur3 hash of
  ``<view>:<feature>``, and ``_ts:<view>`` holding the event time as a ``google.protobuf.Timestamp``.

Which write wins (Feast differs per store, and neither handles a same-time correction): a row replaces the stored one
when its event time is newer, or equal with a newer created time (``ingested_at``). So replaying a commit changes
nothing, an older row never overwrites a newer one, and a correction with the same event time is not dropped. Redis
decides atomically per entity in a Lua script; it keeps the created time in one extra field, ``_created_ts:<view>``,
which Feast never reads. SQLite decides in the upsert's ``WHERE`` clause; its created time has Feast's one-second
resolution, so a tie within the same second is resolved in favour of the incoming row. ``mode="replace"`` writes
unconditionally (a full reload that must make the store equal to a Delta snapshot, even where values moved back).

Redis connection failures are raised as :class:`~pipelines.runtime.TransientError`, so the stage retries them; every
write is idempotent, so retrying a half-written batch is safe.
"""

from __future__ import annotations

import sqlite3
import struct
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.errors import PlatformError, Terminal

if TYPE_CHECKING:
    from redis import Redis

WriteMode = Literal["newer", "replace"]

#: Feast ``ValueType`` numbers of the entity key types it can serialise.
_KEY_TYPES = {"string": 2, "int32": 3, "int64": 4}
#: ``feast.types.Value`` field tags (field number << 3 | wire type).
_TAG_STRING, _TAG_INT32, _TAG_INT64, _TAG_DOUBLE, _TAG_FLOAT, _TAG_BOOL = 0x12, 0x18, 0x20, 0x29, 0x35, 0x38
_MASK64 = (1 << 64) - 1


#: Where the loaders record the Delta version a view's online data reflects (see ``write_marker``).
MARKER_KEY = b"feature_platform:loaded_delta_version"
MARKER_FEATURE = "__delta_version__"


class UnsupportedOnlineStoreError(PlatformError, Terminal):
    """The online store (or one of its options) has no fast writer here; the message names the setting."""


# ---------------------------------------------------------------------------------------------------------- encoding
def _varint(value: int) -> bytes:
    value &= _MASK64  # negative numbers are sign-extended to 64 bits: always 10 bytes, as protobuf does
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


_SMALL = 1 << 14
_INT64_SMALL = [bytes([_TAG_INT64]) + _varint(v) for v in range(_SMALL)]
_INT32_SMALL = [bytes([_TAG_INT32]) + _varint(v) for v in range(_SMALL)]


def _encode_ints(values: list[int | None], small: list[bytes], tag: bytes) -> list[bytes]:
    return [b"" if v is None else small[v] if 0 <= v < _SMALL else tag + _varint(v) for v in values]


def _encode_fixed(column: pa.ChunkedArray, tag: int, dtype: str) -> list[bytes]:
    numbers = column.to_numpy() if column.null_count == 0 else column.fill_null(np.nan).to_numpy()
    packed = np.empty(len(numbers), dtype=np.dtype([("tag", "u1"), ("value", dtype)]))
    packed["tag"] = tag
    packed["value"] = numbers
    raw, width = packed.tobytes(), packed.dtype.itemsize
    out = [raw[i:i + width] for i in range(0, len(raw), width)]
    for index in np.flatnonzero(np.isnan(numbers)):  # Feast turns NaN and null into the empty Value
        out[index] = b""
    return out


def _encode_strings(values: list[str | None]) -> list[bytes]:
    out = []
    for value in values:
        if value is None:
            out.append(b"")
        else:
            data = value.encode("utf-8")
            out.append(b"\x12" + (bytes((len(data),)) if len(data) < 0x80 else _varint(len(data))) + data)
    return out


def _pylist(column: pa.ChunkedArray) -> list[Any]:
    """``column.to_pylist()`` of a numeric or boolean column; without nulls through numpy, ~10x faster."""
    if column.null_count == 0:
        return column.to_numpy().tolist()
    return column.to_pylist()


def encode_values(column: pa.ChunkedArray | pa.Array, feature_type: str) -> list[bytes]:
    """Serialised ``feast.types.Value`` of every value of a contract feature column (``b""`` for null)."""
    if isinstance(column, pa.Array):
        column = pa.chunked_array([column])
    if feature_type == "double":
        return _encode_fixed(column, _TAG_DOUBLE, "<f8")
    if feature_type == "float":
        return _encode_fixed(column, _TAG_FLOAT, "<f4")
    if feature_type == "int64":
        return _encode_ints(_pylist(column), _INT64_SMALL, bytes([_TAG_INT64]))
    if feature_type == "int32":
        return _encode_ints(_pylist(column), _INT32_SMALL, bytes([_TAG_INT32]))
    if feature_type == "string":
        return _encode_strings(column.to_pylist())
    if feature_type == "boolean":
        return [b"" if v is None else (b"\x38\x01" if v else b"\x38\x00") for v in _pylist(column)]
    return _encode_with_feast(column, feature_type)


def _encode_with_feast(column: pa.ChunkedArray, feature_type: str) -> list[bytes]:
    """Types without a fast path (timestamps) go through Feast's own conversion: slower, identical by definition."""
    from feast.type_map import python_values_to_proto_values
    from feast.value_type import ValueType

    value_type = {"timestamp": ValueType.UNIX_TIMESTAMP}.get(feature_type)
    if value_type is None:
        raise UnsupportedOnlineStoreError(f"no online encoding for feature type {feature_type!r}")
    values = column.to_numpy(zero_copy_only=False)
    return [proto.SerializeToString() for proto in python_values_to_proto_values(values, value_type)]


def value_texts(column: pa.ChunkedArray, feature_type: str) -> list[str | None]:
    """SQLite's ``value_text`` column: ``str()`` of the number as Feast reads it back from the proto, the string
    itself, ``"True"``/``"False"``; None for null (and NaN, which Feast stores as null)."""
    if feature_type == "string":
        return column.to_pylist()
    if feature_type in ("double", "float"):
        if feature_type == "float":  # the proto holds a float32: Python sees its exact double value
            column = pc.cast(column, pa.float64())
        if column.null_count == 0 and not pc.any(pc.is_nan(column)).as_py():
            return list(map(float.__repr__, _pylist(column)))  # str() of a float, without per-value checks
        return [None if v is None or v != v else str(v) for v in column.to_pylist()]
    if feature_type in ("int64", "int32", "boolean"):
        if column.null_count == 0:
            return list(map(str, _pylist(column)))
        return [None if v is None else str(v) for v in column.to_pylist()]
    return [None] * len(column)


def encode_entity_keys(rows: pa.Table, join_keys: Sequence[str], key_types: Sequence[str]) -> list[bytes]:
    """Feast's entity key serialisation (version 3) of every row's join-key values."""
    pairs = sorted(zip(join_keys, key_types, strict=True))
    header = [struct.pack("<I", len(pairs))]
    for name, _ in pairs:
        encoded = name.encode("utf-8")
        header.append(struct.pack("<II", 2, len(encoded)) + encoded)
    prefix = b"".join(header)
    parts = [_encode_key_values(rows.column(name).to_pylist(), key_type) for name, key_type in pairs]
    if len(parts) == 1:
        return [prefix + part for part in parts[0]]
    return [prefix + b"".join(row) for row in zip(*parts, strict=True)]


def _encode_key_values(values: list[Any], key_type: str) -> list[bytes]:
    if key_type == "string":
        out = []
        for value in values:
            data = value.encode("utf-8")
            out.append(struct.pack("<II", 2, len(data)) + data)
        return out
    if key_type == "int64":
        return [struct.pack("<IIq", 4, 8, value) for value in values]
    if key_type == "int32":
        return [struct.pack("<IIi", 3, 4, value) for value in values]
    raise UnsupportedOnlineStoreError(f"Feast cannot serialise entity keys of type {key_type!r}: use string, int32 "
                                      "or int64")


def _epoch_micros(column: pa.ChunkedArray) -> list[int]:
    return _pylist(pc.cast(column, pa.int64()))


# ------------------------------------------------------------------------------------------------------------ batches
@dataclass(frozen=True)
class OnlineRows:
    """One batch in store-ready form: serialised entity keys, serialised values per feature (column-major),
    the feature types, and event / created times as UTC epoch microseconds. Picklable, so it can cross processes."""

    entity_keys: list[bytes]
    features: dict[str, list[bytes]]
    texts: dict[str, list[str | None]]
    event_us: list[int]
    created_us: list[int]

    @property
    def rows(self) -> int:
        return len(self.entity_keys)


def encode_rows(rows: pa.Table, *, join_keys: Sequence[str], key_types: Sequence[str],
                feature_types: dict[str, str], event_column: str, created_column: str,
                with_texts: bool = False) -> OnlineRows:
    """Encode a batch of newest-per-entity rows (Delta layout) for the online writers."""
    return OnlineRows(
        entity_keys=encode_entity_keys(rows, join_keys, key_types),
        features={name: encode_values(rows.column(name), kind) for name, kind in feature_types.items()},
        texts=({name: value_texts(rows.column(name), kind) for name, kind in feature_types.items()}
               if with_texts else {}),
        event_us=_epoch_micros(rows.column(event_column)),
        created_us=_epoch_micros(rows.column(created_column)),
    )


@dataclass(frozen=True)
class WriteOutcome:
    """Entities of one batch whose values were written, and those skipped because the store held newer ones."""

    written: int
    skipped: int


# ------------------------------------------------------------------------------------------------------------- SQLite
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


# -------------------------------------------------------------------------------------------------------------- Redis
#: One call writes many entities (KEYS[1..n]). ARGV: mode, ttl s, feature count f, ts field, created field, the f
#: feature fields, then column-major: n event µs, n created µs, n ``_ts`` values, then n values per feature. The stored
#: event time is read from Feast's own ``_ts`` field (a protobuf Timestamp: 0x08 varint seconds, 0x10 varint nanos),
#: so values written by ``feast materialize`` are compared correctly too. Returns how many entities were written.
_REDIS_WRITE_LUA = """
local function ts_micros(raw)
  local pos, seconds, nanos = 1, 0, 0
  while pos <= #raw do
    local tag = string.byte(raw, pos); pos = pos + 1
    local value, scale = 0, 1
    repeat
      local b = string.byte(raw, pos); pos = pos + 1
      value = value + (b % 128) * scale; scale = scale * 128
    until b < 128
    if tag == 8 then seconds = value elseif tag == 16 then nanos = value end
  end
  return seconds * 1000000 + math.floor(nanos / 1000)
end
local replace, ttl, nf = ARGV[1] == 'replace', tonumber(ARGV[2]), tonumber(ARGV[3])
local ts_field, created_field = ARGV[4], ARGV[5]
local n, head = #KEYS, 5 + nf
local written = 0
for i = 1, n do
  local event, created = ARGV[head + i], ARGV[head + n + i]
  local write = true
  if not replace then
    local old = redis.call('HMGET', KEYS[i], ts_field, created_field)
    if old[1] then
      local old_event, new_event = ts_micros(old[1]), tonumber(event)
      if old_event > new_event then write = false
      elseif old_event == new_event and old[2] and tonumber(old[2]) >= tonumber(created) then write = false end
    end
  end
  if write then
    local args = {ts_field, ARGV[head + 2 * n + i], created_field, created}
    for f = 1, nf do
      args[2 * f + 3] = ARGV[5 + f]
      args[2 * f + 4] = ARGV[head + (2 + f) * n + i]
    end
    redis.call('HSET', KEYS[i], unpack(args))
    if ttl > 0 then redis.call('EXPIRE', KEYS[i], ttl) end
    written = written + 1
  end
end
return written
"""
#: Entities per script call: small enough that one call blocks the server for well under a millisecond (concurrent
#: online reads wait for it), large enough that the per-call cost disappears.
REDIS_ENTITIES_PER_CALL = 128


def _resp_bulk(values: Sequence[bytes]) -> bytes:
    """RESP bulk strings (``$<len>\\r\\n<bytes>\\r\\n``) of ``values``, concatenated. Values of one width (fixed-size
    numbers, same-length keys) are framed in one numpy pass instead of one Python operation each."""
    count = len(values)
    if count == 0:
        return b""
    width = len(values[0])
    joined = b"".join(values)
    if len(joined) == count * width and width > 0:
        lengths = np.fromiter(map(len, values), dtype=np.int64, count=count)
        if (lengths == width).all():
            prefix = np.frombuffer(b"$%d\r\n" % width, dtype=np.uint8)
            framed = np.empty((count, len(prefix) + width + 2), dtype=np.uint8)
            framed[:, :len(prefix)] = prefix
            framed[:, len(prefix):-2] = np.frombuffer(joined, dtype=np.uint8).reshape(count, width)
            framed[:, -2:] = (13, 10)
            return framed.tobytes()
    return b"".join([b"$%d\r\n%b\r\n" % (len(value), value) for value in values])


_REDIS_TRANSIENT_NAMES = ("ConnectionError", "TimeoutError", "BusyLoadingError", "TryAgainError")


def _timestamp_proto(epoch_us: int) -> bytes:
    """``google.protobuf.Timestamp`` bytes as Feast writes ``_ts`` (zero fields are omitted, as protobuf does)."""
    seconds, micros = divmod(epoch_us, 1_000_000)
    out = b""
    if seconds:
        out += b"\x08" + _varint(seconds)
    if micros:
        out += b"\x10" + _varint(micros * 1000)
    return out


class RedisOnlineWriter:
    """Writes batches into Feast's Redis online store layout for one feature view, one pipeline per batch.

    ``feature_fields`` maps each feature to its hash field (Feast's ``_mmh3("<view>:<feature>")``)."""

    kind = "redis"

    def __init__(self, client: Redis, *, project: str, view: str, feature_fields: dict[str, bytes],
                 key_ttl_seconds: int | None = None) -> None:
        self.client = client
        self.project = project.encode("utf-8")
        self.ts_field = f"_ts:{view}".encode()
        self.created_field = f"_created_ts:{view}".encode()
        self.feature_fields = feature_fields
        self.ttl = str(key_ttl_seconds or 0).encode()
        self.marker_key = MARKER_KEY + b":" + self.project + b":" + view.encode()
        script = _REDIS_WRITE_LUA.encode()
        self._eval = b"$4\r\nEVAL\r\n$%d\r\n%b\r\n" % (len(script), script)

    def server_epoch(self) -> str:
        """The Redis server's ``run_id``: it changes on every restart, which may have lost unpersisted writes."""
        return self._call(lambda: str(self.client.info("server")["run_id"]))

    def read_marker(self) -> int | None:
        """The Delta version this view's online data reflects, None when unknown (never loaded, or lost)."""
        value = self._call(lambda: self.client.get(self.marker_key))
        return None if value is None else int(value)

    def write_marker(self, version: int) -> None:
        """Record the Delta version loaded. Written after the data: Redis persists (AOF or RDB) in command order, so
        a marker that survived a restart implies the data before it survived too; a lost marker forces a reload."""
        self._call(lambda: self.client.set(self.marker_key, str(version)))

    def write(self, batch: OnlineRows, mode: WriteMode = "newer") -> WriteOutcome:
        """Write a batch: one script call per :data:`REDIS_ENTITIES_PER_CALL` entities, all sent at once.

        The commands are framed here (RESP, column by column) and sent on one connection without redis-py's
        per-argument packing, which cost more than everything else together (~80 µs per entity)."""
        ts_cache: dict[int, bytes] = {}
        ts_values = []
        for event in batch.event_us:
            ts = ts_cache.get(event)
            if ts is None:
                ts = ts_cache[event] = _timestamp_proto(event)
            ts_values.append(ts)
        columns = [[b"%d" % v for v in batch.event_us], [b"%d" % v for v in batch.created_us], ts_values,
                   *batch.features.values()]
        keys = [key + self.project for key in batch.entity_keys]
        fields = [self.feature_fields[name] for name in batch.features]
        header = _resp_bulk([mode.encode(), self.ttl, b"%d" % len(fields), self.ts_field, self.created_field,
                             *fields])
        commands = []
        for offset in range(0, batch.rows, REDIS_ENTITIES_PER_CALL):
            chunk = slice(offset, offset + REDIS_ENTITIES_PER_CALL)
            count = len(keys[chunk])
            argc = 3 + count + 5 + len(fields) + count * len(columns)
            commands.append(b"".join([b"*%d\r\n" % argc, self._eval, b"$%d\r\n%d\r\n" % (len(str(count)), count),
                                      _resp_bulk(keys[chunk]), header,
                                      *[_resp_bulk(column[chunk]) for column in columns]]))
        written = self._call(lambda: self._send(commands))
        return WriteOutcome(written, batch.rows - written)

    def _send(self, commands: list[bytes]) -> int:
        """Send pre-framed commands on one pooled connection and sum their integer replies. Any failure drops the
        connection (replies may be left unread on it); the batch is then retried whole, which is idempotent."""
        pool = self.client.connection_pool
        connection = pool.get_connection()
        try:
            connection.send_packed_command(commands)
            total = 0
            for _ in commands:
                total += int(connection.read_response())
            return total
        except BaseException:
            connection.disconnect()
            raise
        finally:
            pool.release(connection)

    def _call(self, fn: Any) -> Any:
        from redis import exceptions

        try:
            return fn()
        except (exceptions.ConnectionError, exceptions.TimeoutError, exceptions.BusyLoadingError,
                exceptions.TryAgainError) as error:
            from pipelines.runtime import TransientError

            raise TransientError(f"redis at {self._where()}: {type(error).__name__}: {error}") from error

    def _where(self) -> str:
        kwargs = self.client.connection_pool.connection_kwargs
        return f"{kwargs.get('host')}:{kwargs.get('port')}"

    def close(self) -> None:
        self.client.close()
