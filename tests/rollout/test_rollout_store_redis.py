"""The Redis rollout store against a real redis-server: the same promises as SQLite (compare-and-set, one active
rollout per contract, the audit log in the same transaction) and the router reading it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from pipelines.contracts.model import Contract
from pipelines.rollout import controller as ctl
from pipelines.rollout.errors import RolloutConflictError, RolloutRefusedError
from pipelines.rollout.router import RolloutRouter
from pipelines.rollout.store import RedisRolloutStore
from pipelines.testing.redis_server import RedisServer


@pytest.fixture
def redis_store(redis_server: RedisServer) -> Iterator[RedisRolloutStore]:
    store = RedisRolloutStore(redis_server.url)
    try:
        yield store
    finally:
        store.close()


def test_redis_store_keeps_rollouts_with_compare_and_set(redis_store: RedisRolloutStore,
                                                         project_contract: Callable[[str], Contract]) -> None:
    data = project_contract("user_txn_stats").model_dump(mode="json", by_alias=True)
    data["version"] = "2.0.0"
    candidate = Contract.model_validate(data)
    state = ctl.start(redis_store, candidate, stable_major=1, now=time.time())
    with pytest.raises(RolloutRefusedError):
        ctl.start(redis_store, candidate, stable_major=1, now=time.time())
    moved = redis_store.update(state.at_step(2, time.time()), None)
    assert moved.revision == state.revision + 1 and moved.weight == 50
    with pytest.raises(RolloutConflictError):
        redis_store.update(state, None)  # a write based on the old revision loses
    router = RolloutRouter(redis_store)
    majors = router.majors(candidate.name, [(f"u{i}",) for i in range(10_000)])
    assert majors is not None and abs(majors.count(2) / len(majors) - 0.5) <= 0.02
    ctl.abort(redis_store, candidate.name, reason="bad values", now=time.time())
    assert [e.kind for e in redis_store.audit(candidate.name)] == ["start", "abort"]
    assert [s.phase for s in redis_store.all_current()] == ["aborted"]


def test_redis_once_an_abort_is_recorded_the_next_routing_decision_sends_nothing_to_the_candidate(
        redis_store: RedisRolloutStore, redis_server: RedisServer,
        project_contract: Callable[[str], Contract]) -> None:
    data = project_contract("user_txn_stats").model_dump(mode="json", by_alias=True)
    data["version"] = "2.0.0"
    candidate = Contract.model_validate(data)
    state = ctl.start(redis_store, candidate, stable_major=1, now=time.time())
    redis_store.update(state.at_step(2, time.time()), None)
    keys = [(f"u{i}",) for i in range(1000)]
    worker = RedisRolloutStore(redis_server.url)  # another worker's connection
    watching = RolloutRouter(worker, poll_s=3600)  # only the per-request generation check can see the abort
    assert 2 in watching.majors(candidate.name, keys)  # type: ignore[operator]
    assert not worker.changed()  # nothing written since: no re-read
    ctl.abort(redis_store, candidate.name, reason="test", now=time.time())
    assert watching.majors(candidate.name, keys) == [1] * len(keys)
    worker.close()
