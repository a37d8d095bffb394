"""Step 3 of a request: read stored values from Feast's online store layout, SQLite or Redis, without Feast.

Both readers take a batch of lookups (view, serialised entity keys, feature names) and return, per entity, ``None``
(nothing stored) or a :class:`Stored` row: the event time and the serialised value of each feature found. A feature
absent from the store is absent from the row (it becomes ``NOT_FOUND``).

* SQLite (:class:`SqliteReader`): ``<project>_<view>`` has one row per (entity key, feature); one ``SELECT ... WHERE
  entity_key IN (...) AND feature_name IN (...)`` per view, on a read-only connection kept for the worker's life. The
  call is synchronous on the event loop: a point lookup in a cached file takes tens of microseconds, less than a hop
  to a thread. A writer holding the file is waited for at most ``busy_timeout``; then the read fails (and the request
  is answered with fallbacks).
* Redis (:class:`RedisReader`): one hash per entity (key + project), fields murmur3("<view>:<feature>") and
  ``_ts:<view>``; every lookup of a request is one ``HMGET`` in one pipeline (one round trip), on redis-py's asyncio
  client with the hiredis parser.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from pipelines.serving.catalog import ViewSpec
from pipelines.serving.values import sqlite_epoch_seconds, timestamp_proto_seconds


@dataclass(frozen=True, slots=True)
class Stored:
    """What the store holds for one entity of one view: event time (UTC seconds + nanos) and value bytes by name."""

    seconds: int
    nanos: int
    values: dict[str, bytes]


@dataclass(frozen=True)
class Lookup:
    """Read ``features`` of ``view`` for the entities with these serialised keys."""

    view: ViewSpec
    keys: list[bytes]
    features: Sequence[str]


class StoreReader(Protocol):
    kind: str

    async def read(self, lookups: Sequence[Lookup]) -> list[list[Stored | None]]:
        """One list per lookup, one entry per key (None when nothing is stored)."""
        ...

    async def ready(self, views: Sequence[ViewSpec]) -> str | None:
        """None when the store answers and holds every view; else what is wrong."""
        ...

    async def close(self) -> None: ...


class SqliteReader:
    """Reads Feast's SQLite online store (see module docstring)."""

    kind = "sqlite"

    def __init__(self, path: Path, *, busy_timeout_s: float) -> None:
        self.path = Path(path)
        self.busy_timeout_s = busy_timeout_s
        self._connection: sqlite3.Connection | None = None
        self._statements: dict[tuple[str, int, int], str] = {}

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None:
            self._connection = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=self.busy_timeout_s,
                                               check_same_thread=False, isolation_level=None)
        return self._connection

    def _statement(self, table: str, keys: int, features: int) -> str:
        shape = (table, keys, features)
        statement = self._statements.get(shape)
        if statement is None:
            quoted = '"' + table.replace('"', '""') + '"'
            statement = self._statements[shape] = (
                f"SELECT entity_key, feature_name, value, event_ts FROM {quoted} WHERE entity_key IN "
                f"({','.join('?' * keys)}) AND feature_name IN ({','.join('?' * features)})")
        return statement

    async def read(self, lookups: Sequence[Lookup]) -> list[list[Stored | None]]:
        """Every lookup in ONE statement (``UNION ALL`` of one ``SELECT`` per lookup, each row tagged with its
        lookup's index): a request split across two majors by a rollout costs one statement, not two."""
        connection = self._connect()
        uniques = [list(dict.fromkeys(lookup.keys)) for lookup in lookups]
        parts, parameters = [], []
        for index, (lookup, unique) in enumerate(zip(lookups, uniques, strict=True)):
            parts.append(f"SELECT {index}, " + self._statement(lookup.view.sqlite_table, len(unique),
                                                                len(lookup.features))[len("SELECT "):])
            parameters += [*unique, *lookup.features]
        try:
            rows = connection.execute(" UNION ALL ".join(parts), parameters).fetchall()
        except sqlite3.Error:
            self._drop()
            raise
        found: list[dict[bytes, Stored]] = [{} for _ in lookups]
        for index, key, feature, value, event_ts in rows:
            stored = found[index].get(key)
            if stored is None:
                seconds = sqlite_epoch_seconds(int(event_ts)) if event_ts is not None else 0
                stored = found[index][key] = Stored(seconds, 0, {})
            stored.values[feature] = value
        return [[by_key.get(key) for key in lookup.keys] for lookup, by_key in zip(lookups, found, strict=True)]

    async def ready(self, views: Sequence[ViewSpec]) -> str | None:
        if not self.path.exists():
            return f"no SQLite online store at {self.path}"
        try:
            names = {row[0] for row in self._connect().execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()}
        except sqlite3.Error as error:
            self._drop()
            return f"SQLite online store {self.path}: {error}"
        missing = [view.name for view in views if view.sqlite_table not in names]
        return f"views not applied to the online store: {', '.join(missing)}" if missing else None

    def _drop(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    async def close(self) -> None:
        self._drop()


def parse_redis_url(url: str) -> dict[str, Any]:
    """Feast's connection string ``host:port[,db=0,password=...,ssl=true]`` as redis-py keyword arguments."""
    address, *options = [part.strip() for part in url.split(",") if part.strip()]
    host, _, port = address.rpartition(":")
    params: dict[str, Any] = {"host": host or address, "port": int(port) if host else 6379}
    for option in options:
        name, _, value = option.partition("=")
        if name == "db":
            params["db"] = int(value)
        elif name in ("password", "username"):
            params[name] = value
        elif name == "ssl":
            params["ssl"] = value.lower() == "true"
    return params


class RedisReader:
    """Reads Feast's single-node Redis online store (see module docstring)."""

    kind = "redis"

    def __init__(self, url: str, project: str, *, max_connections: int) -> None:
        from redis.asyncio import Redis

        self.url = url
        self.project = project.encode("utf-8")
        self.client = Redis(**parse_redis_url(url), max_connections=max_connections, socket_connect_timeout=1.0,
                            socket_timeout=2.0)

    async def read(self, lookups: Sequence[Lookup]) -> list[list[Stored | None]]:
        pipe = self.client.pipeline(transaction=False)
        fields_of = []
        for lookup in lookups:
            fields = [lookup.view.features[name].redis_field for name in lookup.features]
            fields.append(lookup.view.redis_ts_field)
            fields_of.append(fields)
            for key in lookup.keys:
                pipe.hmget(key + self.project, fields)
        replies = await pipe.execute()
        out = []
        position = 0
        for lookup in lookups:
            rows: list[Stored | None] = []
            names = lookup.features
            for _ in lookup.keys:
                reply = replies[position]
                position += 1
                ts = timestamp_proto_seconds(reply[-1])
                values = {name: value for name, value in zip(names, reply, strict=False) if value is not None}
                if ts is None and not values:
                    rows.append(None)
                else:
                    seconds, nanos = ts if ts is not None else (0, 0)
                    rows.append(Stored(seconds, nanos, values))
            out.append(rows)
        return out

    async def ready(self, views: Sequence[ViewSpec]) -> str | None:
        try:
            await self.client.ping()
        except Exception as error:  # any failure to answer is "not ready", with its reason
            return f"redis at {self.url}: {type(error).__name__}: {error}"
        return None

    async def close(self) -> None:
        await self.client.aclose()
