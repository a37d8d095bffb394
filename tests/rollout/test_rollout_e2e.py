"""Rollouts end to end over real HTTP: real Delta tables for majors 1 and 2 of user_txn_stats, a real Feast SQLite
online store loaded by the platform's loader, a real ``feature-platform serve`` process routing per entity from the
shared SQLite rollout store, and the controller measuring the candidate with the real health-based gates.

Only the controller's clock is injected (each tick moves it by one interval), so a 10-minute dwell costs a tick.
Clients keep requesting features by contract name (no version) the whole time; every response must be a 200, and
``x-served-versions`` says which major served each entity.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from pipelines.feast_sync.store import online_store_path, open_store
from pipelines.rollout import controller as ctl
from pipelines.rollout.gates import HealthGates
from pipelines.testing.rollout_stack import USERS, RolloutStack, build_stack, stream_one_step

pytestmark = pytest.mark.e2e

INTERVAL = 60.0
DWELL = 600.0  # the contract's rollout.dwell (10m)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[RolloutStack]:
    built = build_stack(tmp_path)
    yield built
    built.close()


@dataclass
class Clients:
    """Threads requesting 50 users at a time by contract name until stopped; they record every answer."""

    url: str
    codes: Counter = field(default_factory=Counter)
    served: list[tuple[float, list[int]]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        session, batch = requests.Session(), 0
        while not self.stop.is_set():
            users = USERS[(batch * 50) % len(USERS):][:50]
            batch += 1
            sent = datetime.now(UTC).timestamp()
            response = session.post(self.url + "/get-online-features", timeout=10, json={
                "features": ["user_txn_stats:txn_count_5m", "user_txn_stats:amount_sum_5m"],
                "entities": {"user_id": users}})
            self.codes[response.status_code] += 1
            if response.status_code == 200:
                header = response.headers["x-served-versions"]
                self.served.append((sent, [int(v) for v in header.split("=", 1)[1].split(",")]))

    def __enter__(self) -> Clients:
        self.threads = [threading.Thread(target=self.run) for _ in range(2)]
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)


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
            assert clock.t - injected <= INTERVAL * 2 + 1, "not aborted within interval x failure limit"
        aborted_at = datetime.now(UTC).timestamp()
        state = stack.rollouts.current("user_txn_stats")
        assert state is not None and "missing_rate" in state.reason
        assert share_of_candidate(stack.server.url) == 0.0
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
