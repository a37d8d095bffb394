"""The writer for Feast's (single-node) Redis online store: a whole batch in one round trip of pre-framed commands.

Layout (as Feast 0.67 writes it): one hash per entity key (serialised key + project name), a field per feature named by
the murmur3 hash of ``<view>:<feature>``, and ``_ts:<view>`` holding the event time as a ``google.protobuf.Timestamp``.

Why it frames RESP itself: redis-py's per-argument packing cost more than everything else together (~80 µs per
entity); here the commands are framed column by column (fixed-width columns in one numpy pass) and sent on one
connection, one Lua call per 128 entities (one call blocks the server well under a millisecond).

Which write wins (:mod:`pipelines.feast_sync.online_writers`): Redis decides atomically per entity in the Lua script;
it keeps the created time in one extra field, ``_created_ts:<view>``, which Feast never reads.

Redis connection failures are raised as :class:`~pipelines.runtime.TransientError`, so the stage retries them; every
write is idempotent, so retrying a half-written batch is safe.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from pipelines.feast_sync.online_encoding import timestamp_proto
from pipelines.feast_sync.online_writers import MARKER_KEY, OnlineRows, WriteMode, WriteOutcome

if TYPE_CHECKING:
    from redis import Redis

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
                ts = ts_cache[event] = timestamp_proto(event)
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
