"""Rollouts end to end over real HTTP: real Delta tables for majors 1 and 2 of user_txn_stats, a real Feast SQLite
online store loaded by the platform's loader, a real ``feature-platform serve`` process routing per entity from the
shared SQLite rollout store, and the controller measuring the candidate with the real health-based gates.

Only the controller's clock is injected (each tick moves it by one interval), so a 10-minute dwell costs a tick.
Clients keep requesting features by contract name (no version) the whole time; every response must be a 200, and
``x-served-versions`` says which major served each entity.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from pipelines.feast_sync.store import online_store_path, open_store
from pipelines.health.online_signal import missing_in_sqlite, missing_through_feast
from pipelines.rollout import controller as ctl
from pipelines.rollout.gates import HealthGates
from pipelines.testing.redis_server import RedisServer
from pipelines.testing.rollout_stack import USERS, RolloutStack, build_stack, stream_one_step
from tests.rollout.clients import Clients

pytestmark = pytest.mark.e2e

INTERVAL = 60.0
DWELL = 600.0  # the contract's rollout.dwell (10m)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[RolloutStack]:
    built = build_stack(tmp_path)
    yield built
    built.close()


def share_of_candidate(url: str) -> float:
    """The share of all users the candidate serves now (two requests: a request holds at most 1000 entities)."""
    majors: list[str] = []
    for start in range(0, len(USERS), 1000):
        response = requests.post(url + "/get-online-features", timeout=10, json={
            "features": ["user_txn_stats:txn_count_5m"], "entities": {"user_id": USERS[start:start + 1000]}})
        assert response.status_code == 200, response.text
        majors += response.headers["x-served-versions"].split("=", 1)[1].split(",")
    return majors.count("2") / len(majors)


def candidate_gates(stack: RolloutStack) -> HealthGates:
    """The real health-based gates on major 2, reading the online store through one Feast store object."""
    return HealthGates(stack.settings, lambda _state: stack.v2, store=open_store(stack.settings))


class Clock:
    def __init__(self) -> None:
        self.t = datetime.now(UTC).timestamp()

    def __call__(self) -> float:
        return self.t


def test_a_healthy_candidate_is_promoted_through_every_step_over_http(stack: RolloutStack) -> None:
    clock = Clock()
    ctl.start(stack.rollouts, stack.v2, stable_major=1, now=clock(), interval_s=INTERVAL,
              stable=stack.v1)
    controller = ctl.Controller(stack.rollouts, candidate_gates(stack), now=clock)
    shares = {}
    with Clients(stack.server.url) as clients:
        while stack.rollouts.current("user_txn_stats").phase != "promoted":  # type: ignore[union-attr]
            stream_one_step(stack)
            controller.tick()
            clock.t += DWELL  # one evaluation per tick, each after a whole dwell (virtual time)
            state = stack.rollouts.current("user_txn_stats")
            assert state is not None and state.phase != "aborted", state.reason
            shares.setdefault(state.weight, share_of_candidate(stack.server.url))
            assert clock.t - state.started_at < 4 * 3600
    assert sorted(shares) == [0, 5, 50, 100]
    for weight, share in shares.items():
        assert abs(share - weight / 100) <= 0.03, (weight, share)  # 2000 entities: within a few points
    assert clients.codes and set(clients.codes) == {200}, clients.codes
    steps = [(e.kind, e.weight) for e in stack.rollouts.audit("user_txn_stats") if e.kind != "evaluate"]
    assert steps == [("start", 0), ("step", 5), ("step", 50), ("step", 100), ("promote", 100)]


def test_a_candidate_missing_one_percent_is_aborted_with_no_failed_request(stack: RolloutStack) -> None:
    clock = Clock()
    ctl.start(stack.rollouts, stack.v2, stable_major=1, now=clock(), interval_s=INTERVAL,
              stable=stack.v1)
    controller = ctl.Controller(stack.rollouts, candidate_gates(stack), now=clock)
    with Clients(stack.server.url) as clients:
        while stack.rollouts.current("user_txn_stats").weight < 5:  # type: ignore[union-attr]
            stream_one_step(stack)
            controller.tick()
            clock.t += DWELL
        # the worst phase: the fault lands just after an evaluation that passed, so two whole intervals must pass
        evaluated = stack.rollouts.current("user_txn_stats").last_evaluated_at  # type: ignore[union-attr]
        assert evaluated is not None
        clock.t = evaluated + 1.0
        # the fault: 1 % of the candidate's entities lose their online values (deleted from the real store)
        with sqlite3.connect(online_store_path(stack.settings)) as db:
            table = next(name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")
                         if name.endswith("user_txn_stats_v2"))
            keys = [k for (k,) in db.execute(f"SELECT DISTINCT entity_key FROM {table} ORDER BY entity_key")]
            doomed = keys[:: 100][: len(USERS) // 100]
            db.executemany(f"DELETE FROM {table} WHERE entity_key = ?", [(k,) for k in doomed])
        stream_one_step(stack)  # a fresh step: freshness passes, only the missing values can trip a gate
        injected = clock.t
        while stack.rollouts.current("user_txn_stats").phase != "aborted":  # type: ignore[union-attr]
            controller.tick()
            clock.t += 1.0
            assert clock.t - injected <= INTERVAL * 2 + 5, "not aborted within interval x failure limit"
        aborted_at = datetime.now(UTC).timestamp()  # the abort is recorded (committed) by now
        state = stack.rollouts.current("user_txn_stats")
        assert state is not None and "missing_rate" in state.reason
        recorded = [e for e in stack.rollouts.audit("user_txn_stats") if e.kind == "abort"]
        assert len(recorded) == 1 and recorded[0].actor == "controller"
        # virtual time from the fault to the recorded abort: within one evaluation interval x the failure limit
        assert recorded[0].at - injected <= INTERVAL * state.failure_limit, recorded[0].at - injected
        assert share_of_candidate(stack.server.url) == 0.0
        time.sleep(1.0)  # the clients keep requesting after the abort
    assert clients.codes and set(clients.codes) == {200}, clients.codes
    after = [majors for sent, majors in clients.served if sent > aborted_at]
    assert after and all(major == 1 for majors in after for major in majors)


def test_a_stale_candidate_is_aborted(tmp_path: Path) -> None:
    stack = build_stack(tmp_path, candidate_age=timedelta(minutes=20))  # freshness gate: 5 minutes
    try:
        clock = Clock()
        ctl.start(stack.rollouts, stack.v2, stable_major=1, now=clock(), interval_s=INTERVAL,
                  stable=stack.v1)
        controller = ctl.Controller(stack.rollouts, candidate_gates(stack), now=clock)
        for _ in range(2):
            controller.tick()
            clock.t += INTERVAL
        state = stack.rollouts.current("user_txn_stats")
        assert state is not None and state.phase == "aborted" and "gate freshness" in state.reason, state
        assert share_of_candidate(stack.server.url) == 0.0
    finally:
        stack.close()


def test_with_the_redis_store_no_request_after_a_recorded_abort_is_served_by_the_candidate(
        tmp_path: Path, redis_server: RedisServer) -> None:
    stack = build_stack(tmp_path, workers=2, rollout_redis_url=redis_server.url)
    try:
        state = ctl.start(stack.rollouts, stack.v2, stable_major=1, now=time.time(), stable=stack.v1)
        stack.rollouts.update(state.at_step(2, time.time()), None)
        deadline = time.monotonic() + 10
        while not 0.4 <= share_of_candidate(stack.server.url) <= 0.6:  # both workers serve the 50 % step
            assert time.monotonic() < deadline, "the workers never routed the 50 % step"
        with Clients(stack.server.url) as clients:
            time.sleep(0.5)
            ctl.abort(stack.rollouts, "user_txn_stats", reason="test", now=time.time())
            recorded = datetime.now(UTC).timestamp()  # the abort's transaction has committed
            assert share_of_candidate(stack.server.url) == 0.0  # at once, not after a poll
            time.sleep(1.0)
        assert clients.codes and set(clients.codes) == {200}, clients.codes
        after = [majors for sent, majors in clients.served if sent > recorded]
        before = [majors for sent, majors in clients.served if sent <= recorded]
        assert any(2 in majors for majors in before)  # the candidate did serve until then
        assert after and all(major == 1 for majors in after for major in majors)
    finally:
        stack.close()


def test_the_one_query_coverage_read_agrees_with_feasts_online_api(stack: RolloutStack) -> None:
    store = open_store(stack.settings)
    entities = [{"user_id": user} for user in USERS]
    now = datetime.now(UTC)
    with sqlite3.connect(online_store_path(stack.settings)) as db:
        table = next(name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")
                     if name.endswith("user_txn_stats_v2"))
        keys = [k for (k,) in db.execute(f"SELECT DISTINCT entity_key FROM {table} ORDER BY entity_key")]
        db.executemany(f"DELETE FROM {table} WHERE entity_key = ?", [(k,) for k in keys[0:30]])  # missing
        db.executemany(f"UPDATE {table} SET value = x'', value_text = NULL WHERE entity_key = ?",  # all null
                       [(k,) for k in keys[30:50]])
        db.executemany(f"UPDATE {table} SET value = x'' WHERE entity_key = ? AND feature_name != 'txn_count_5m'",
                       [(k,) for k in keys[50:60]])  # one feature left: still covered
        db.executemany(f"UPDATE {table} SET event_ts = event_ts - 3 * 86400 WHERE entity_key = ?",  # expired (ttl 1d)
                       [(k,) for k in keys[60:75]])
    fast = missing_in_sqlite(store, stack.v2, entities, now)
    assert fast == missing_through_feast(store, stack.v2, entities, now) == 30 + 20 + 15
