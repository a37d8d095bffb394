"""The routing function serving calls: for a contract and its entities, which major serves each entity.

Each serving worker holds one :class:`RolloutRouter`. On every routing decision it asks the store whether anything
was written since it last asked (:meth:`~pipelines.rollout.store.RolloutStore.changed`: SQLite's ``data_version``, a
few microseconds; on Redis one ``GET`` of a counter every write increments) and re-reads the rollouts only then; it
also re-reads at least once per ``poll_s`` (1 s). Otherwise it answers from its snapshot, so routing costs one cheap
check per request and a hash per entity.

* No rollout, or an aborted one: the stable major for every entity (``None`` when there never was a rollout: the
  caller keeps its own default, e.g. the newest major it serves).
* A rollout in ``shadow`` or ``step``: the candidate for entities whose bucket is below ``weight × 100``
  (:mod:`pipelines.rollout.buckets`), the stable major for the others.
* ``promoted``: the candidate for every entity.

**The abort guarantee.** An abort is *recorded* when its write (state and audit entry, one transaction) commits.
A request whose routing starts after that moment sees the change (the check above runs first) and is served by the
stable major: no request received after the abort was recorded is served from the candidate. Requests already routed
before it finish as routed (a few milliseconds). This holds only while the store answers: a store that cannot be
read keeps the last snapshot and tries again at the next poll (the failure is logged); a worker that never read one
routes as if no rollout existed. ``watch_changes=False`` falls back to polling alone (an abort then takes up to
``poll_s`` to reach a worker).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import mmh3

from pipelines.rollout.buckets import BUCKETS, bucket, entity_key
from pipelines.rollout.state import RolloutState
from pipelines.rollout.store import RolloutStore

log = logging.getLogger(__name__)


class RolloutRouter:
    """Per-entity routing from a snapshot of the rollout store refreshed at most every ``poll_s`` seconds."""

    def __init__(self, store: RolloutStore, *, poll_s: float = 1.0, clock: Callable[[], float] = time.monotonic,
                 watch_changes: bool = True):
        self.store = store
        self.watch_changes = watch_changes
        self.poll_s = poll_s
        self.clock = clock
        self._states: dict[str, RolloutState] = {}
        self._read_at: float | None = None
        self._lock = threading.Lock()

    def _snapshot(self) -> dict[str, RolloutState]:
        now = self.clock()
        fresh = self._read_at is not None and now - self._read_at < self.poll_s
        if fresh and not (self.watch_changes and self._changed()):
            return self._states
        with self._lock:
            if not fresh and self.watch_changes:
                self._changed()  # note the store's marker before reading, so the next request need not re-read
            if not fresh or self.watch_changes:
                try:
                    self._states = {state.contract: state for state in self.store.all_current()}
                except Exception as error:  # keep serving from the last snapshot; say why (once per poll)
                    log.warning("rollout store unreadable, routing from the last snapshot: %s", error)
                self._read_at = now
        return self._states

    def _changed(self) -> bool:
        try:
            return self.store.changed()
        except Exception:  # an unreadable store: the poll interval decides, the request is served
            return False

    def state(self, contract: str) -> RolloutState | None:
        return self._snapshot().get(contract)

    def majors(self, contract: str, keys: Sequence[Sequence[Any]]) -> list[int] | None:
        """The major serving each entity (``keys``: the join-key values of each entity, in the contract's order);
        ``None`` when ``contract`` never had a rollout (the caller's default applies)."""
        state = self._snapshot().get(contract)
        if state is None:
            return None
        weight = state.weight
        if weight <= 0:
            return [state.serving_major] * len(keys)
        if weight >= 100:
            return [state.candidate_major] * len(keys)
        threshold = weight * (BUCKETS // 100)
        rid, stable, candidate = state.rollout_id, state.stable_major, state.candidate_major
        if keys and len(keys[0]) == 1:  # one join key (the common case): its text is the key itself, no join
            hash_ = mmh3.hash
            return [candidate if hash_(rid + str(key[0]), 0, False) % BUCKETS < threshold else stable
                    for key in keys]
        return [candidate if bucket(rid, entity_key(key)) < threshold else stable for key in keys]
