"""The durable rollout store shared by every serving worker, the controller and the CLI.

Two implementations behind one small interface:

* :class:`SqliteRolloutStore` (default): ``<data_dir>/rollout/rollouts.sqlite`` in WAL mode, so readers (serving
  workers polling once a second) never block the writer and a reader sees a write as soon as it is committed.
* :class:`RedisRolloutStore` (``FP_ROLLOUT_STORE=redis``): the same records in Redis (``FP_REDIS_URL``), for serving
  workers on several machines.

Both tell a reader cheaply whether anything was written since it last asked (:meth:`RolloutStore.changed`), so a
serving worker checks on every request and re-reads only after a write: an abort is seen by the very next request.

Every state write is a compare-and-set on the state's ``revision`` and appends its audit entry in the same
transaction, so the log and the state never disagree and two writers cannot overwrite each other (the loser gets
:class:`~pipelines.rollout.errors.RolloutConflictError`). A rollout survives restarts of every process: nothing about it
lives only in memory.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from pipelines.rollout.errors import RolloutConflictError, RolloutRefusedError, RolloutStoreError
from pipelines.rollout.state import AuditEntry, RolloutState


class RolloutStore(Protocol):
    """What the controller, the router and the CLI need from the store."""

    def current(self, contract: str) -> RolloutState | None:
        """The newest rollout of ``contract`` (active or final), or None."""
        ...

    def all_current(self) -> list[RolloutState]:
        """The newest rollout of every contract."""
        ...

    def create(self, state: RolloutState, entry: AuditEntry) -> RolloutState:
        """Store a new rollout; refused while the contract has an active one."""
        ...

    def update(self, state: RolloutState, entry: AuditEntry | None) -> RolloutState:
        """Write ``state`` if the stored revision still equals ``state.revision``; returns it with the next one."""
        ...

    def append(self, entry: AuditEntry) -> None: ...

    def changed(self) -> bool:
        """Whether another writer may have changed something since this method last returned (cheap; called on
        every routing decision: SQLite's ``data_version``, a Redis counter). Raises when the store cannot be read."""
        ...

    def audit(self, contract: str, limit: int = 100) -> list[AuditEntry]:
        """The newest ``limit`` audit entries of ``contract``, oldest first."""
        ...

    def close(self) -> None: ...


def _entry(data: dict[str, Any]) -> AuditEntry:
    return AuditEntry(**data)


class SqliteRolloutStore:
    """The rollout store in one SQLite file (see the module docstring). Safe to share between threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(str(path), timeout=10.0, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")  # a promote or abort must survive a power cut
            self._db.executescript(
                "CREATE TABLE IF NOT EXISTS rollouts (rollout_id TEXT PRIMARY KEY, contract TEXT NOT NULL, "
                "started_at REAL NOT NULL, revision INTEGER NOT NULL, state TEXT NOT NULL);"
                "CREATE INDEX IF NOT EXISTS rollouts_by_contract ON rollouts (contract, started_at);"
                "CREATE TABLE IF NOT EXISTS audit (id INTEGER PRIMARY KEY AUTOINCREMENT, contract TEXT NOT NULL, "
                "entry TEXT NOT NULL);")
        except sqlite3.Error as error:
            raise RolloutStoreError(f"cannot open the rollout store: {error}", store=str(path),
                                    hint="check the file and the data folder's permissions") from error

    def changed(self) -> bool:
        """SQLite's ``data_version`` moves when another connection commits: a read of a few microseconds, so a
        worker sees an abort on its very next request."""
        version = self._query("PRAGMA data_version")[0][0]
        changed, self._data_version = version != getattr(self, "_data_version", None), version
        return changed

    def _query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def current(self, contract: str) -> RolloutState | None:
        rows = self._query("SELECT state FROM rollouts WHERE contract = ? ORDER BY started_at DESC, rowid DESC "
                           "LIMIT 1", contract)
        return RolloutState.from_dict(json.loads(rows[0][0])) if rows else None

    def all_current(self) -> list[RolloutState]:
        rows = self._query("SELECT r.state FROM rollouts r WHERE r.rowid = (SELECT r2.rowid FROM rollouts r2 WHERE "
                           "r2.contract = r.contract ORDER BY r2.started_at DESC, r2.rowid DESC LIMIT 1) "
                           "ORDER BY r.contract")
        return [RolloutState.from_dict(json.loads(row[0])) for row in rows]

    def create(self, state: RolloutState, entry: AuditEntry) -> RolloutState:
        with self._transaction():
            row = self._db.execute("SELECT state FROM rollouts WHERE contract = ? ORDER BY started_at DESC, "
                                   "rowid DESC LIMIT 1", (state.contract,)).fetchone()
            if row is not None and RolloutState.from_dict(json.loads(row[0])).active:
                raise RolloutRefusedError(f"contract {state.contract} already has an active rollout",
                                          contract=state.contract, hint="promote or abort it first")
            stored = replace(state, revision=1)
            self._db.execute("INSERT INTO rollouts VALUES (?, ?, ?, ?, ?)",
                             (stored.rollout_id, stored.contract, stored.started_at, 1, json.dumps(stored.to_dict())))
            self._insert_audit(entry)
        return stored

    def update(self, state: RolloutState, entry: AuditEntry | None) -> RolloutState:
        stored = replace(state, revision=state.revision + 1)
        with self._transaction():
            cursor = self._db.execute(
                "UPDATE rollouts SET state = ?, revision = ? WHERE rollout_id = ? AND revision = ?",
                (json.dumps(stored.to_dict()), stored.revision, state.rollout_id, state.revision))
            if cursor.rowcount != 1:
                raise RolloutConflictError(f"rollout {state.rollout_id} changed since revision {state.revision}",
                                           contract=state.contract, hint="read it again and retry")
            if entry is not None:
                self._insert_audit(entry)
        return stored

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """One write transaction (a state and its audit entry together, or neither), one writer at a time."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def _insert_audit(self, entry: AuditEntry) -> None:
        self._db.execute("INSERT INTO audit (contract, entry) VALUES (?, ?)",
                         (entry.contract, json.dumps(entry.to_dict())))

    def append(self, entry: AuditEntry) -> None:
        with self._lock:
            self._insert_audit(entry)

    def audit(self, contract: str, limit: int = 100) -> list[AuditEntry]:
        rows = self._query("SELECT entry FROM audit WHERE contract = ? ORDER BY id DESC LIMIT ?", contract, limit)
        return [_entry(json.loads(row[0])) for row in reversed(rows)]

    def close(self) -> None:
        with self._lock:
            self._db.close()


class RedisRolloutStore:
    """The rollout store in Redis: ``fp:rollout:<contract>`` holds the newest rollout's state (JSON),
    ``fp:rollout:contracts`` the set of contracts, ``fp:rollout:audit:<contract>`` the log (a list),
    ``fp:rollout:generation`` a counter every state write increments (what :meth:`changed` reads). Compare-and-set
    with ``WATCH``/``MULTI``."""

    PREFIX = "fp:rollout:"

    def __init__(self, url: str, timeout_s: float = 2.0) -> None:
        import redis

        host, _, rest = url.partition(":")
        port = int(rest.split(",", 1)[0] or 6379)
        self._redis = redis.Redis(host=host, port=port, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
        self._generation: bytes | None = b"unread"

    def changed(self) -> bool:
        """Every write increments ``fp:rollout:generation`` in its transaction: one ``GET`` (a round trip of ~0.1 ms
        on a local network) tells whether to re-read, so a worker sees an abort on its very next request. Raises when
        Redis cannot be reached (the router then waits for its poll instead of asking on every request)."""
        generation = self._redis.get(f"{self.PREFIX}generation")
        changed, self._generation = generation != self._generation, generation
        return changed

    def _key(self, contract: str) -> str:
        return f"{self.PREFIX}{contract}"

    def current(self, contract: str) -> RolloutState | None:
        raw = self._redis.get(self._key(contract))
        return RolloutState.from_dict(json.loads(raw)) if raw else None

    def all_current(self) -> list[RolloutState]:
        names = sorted(n.decode() for n in self._redis.smembers(f"{self.PREFIX}contracts"))
        raws = self._redis.mget([self._key(n) for n in names]) if names else []
        return [RolloutState.from_dict(json.loads(raw)) for raw in raws if raw]

    def _write(self, state: RolloutState, entry: AuditEntry | None, *, expect: int | None) -> RolloutState:
        import redis

        key = self._key(state.contract)
        with self._redis.pipeline() as pipe:
            try:
                pipe.watch(key)
                raw = pipe.get(key)
                current = RolloutState.from_dict(json.loads(raw)) if raw else None
                if expect is None and current is not None and current.active:
                    raise RolloutRefusedError(f"contract {state.contract} already has an active rollout",
                                         contract=state.contract, hint="promote or abort it first")
                if expect is not None and (current is None or current.rollout_id != state.rollout_id
                                           or current.revision != expect):
                    raise RolloutConflictError(f"rollout {state.rollout_id} changed since revision {expect}",
                                          contract=state.contract, hint="read it again and retry")
                stored = replace(state, revision=(expect or 0) + 1)
                pipe.multi()
                pipe.set(key, json.dumps(stored.to_dict()))
                pipe.sadd(f"{self.PREFIX}contracts", state.contract)
                pipe.incr(f"{self.PREFIX}generation")
                if entry is not None:
                    pipe.rpush(f"{self.PREFIX}audit:{state.contract}", json.dumps(entry.to_dict()))
                pipe.execute()
            except redis.WatchError as error:
                raise RolloutConflictError(f"rollout {state.rollout_id} changed during the write",
                                      contract=state.contract, hint="read it again and retry") from error
        return stored

    def create(self, state: RolloutState, entry: AuditEntry) -> RolloutState:
        return self._write(state, entry, expect=None)

    def update(self, state: RolloutState, entry: AuditEntry | None) -> RolloutState:
        return self._write(state, entry, expect=state.revision)

    def append(self, entry: AuditEntry) -> None:
        self._redis.rpush(f"{self.PREFIX}audit:{entry.contract}", json.dumps(entry.to_dict()))

    def audit(self, contract: str, limit: int = 100) -> list[AuditEntry]:
        raws = self._redis.lrange(f"{self.PREFIX}audit:{contract}", -limit, -1)
        return [_entry(json.loads(raw)) for raw in raws]

    def close(self) -> None:
        self._redis.close()


def open_rollout_store(kind: str, data_dir: Path, redis_url: str) -> RolloutStore:
    """The configured store: ``sqlite`` under ``data_dir/rollout`` or ``redis`` at ``redis_url``."""
    if kind == "redis":
        return RedisRolloutStore(redis_url)
    return SqliteRolloutStore(data_dir / "rollout" / "rollouts.sqlite")
