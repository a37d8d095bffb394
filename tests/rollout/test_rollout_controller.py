"""The rollout controller, store and router on a real SQLite store, with the controller's clock injected.

Gates are measured by an injected function here (the health-based gates run for real in ``test_rollout_e2e.py``),
so each test states exactly which gate fails when; time is virtual, so dwell and intervals cost nothing.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pipelines.contracts.model import Contract
from pipelines.rollout import controller as ctl
from pipelines.rollout.buckets import entity_key, in_candidate
from pipelines.rollout.errors import RolloutConflictError, RolloutRefusedError
from pipelines.rollout.gates import GateValue
from pipelines.rollout.router import RolloutRouter
from pipelines.rollout.state import RolloutState
from pipelines.rollout.store import SqliteRolloutStore

PROCS = Path(__file__).with_name("procs.py")
INTERVAL = 60.0


class Clock:
    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.t = start

    def __call__(self) -> float:
        return self.t


class Gates:
    """Scripted gate values: ``missing`` is the candidate's missing rate from now on."""

    def __init__(self) -> None:
        self.missing: float | None = 0.0
        self.calls = 0

    def __call__(self, state: RolloutState) -> dict[str, GateValue]:
        self.calls += 1
        if self.missing is None:
            return {"missing_rate": GateValue("missing_rate", None, 0.003, "inconclusive", "store unreachable")}
        verdict = "fail" if self.missing > 0.003 else "pass"
        return {"missing_rate": GateValue("missing_rate", self.missing, 0.003, verdict)}  # type: ignore[arg-type]


@pytest.fixture
def candidate(project_contract: Callable[[str], Contract]) -> Contract:
    data = project_contract("user_txn_stats").model_dump(mode="json", by_alias=True)
    data["version"] = "2.0.0"
    return Contract.model_validate(data)  # steps [0, 5, 50, 100], dwell 10m


@pytest.fixture
def store(tmp_path: Path) -> SqliteRolloutStore:
    store = SqliteRolloutStore(tmp_path / "rollout" / "rollouts.sqlite")
    yield store
    store.close()


def run_until(controller: ctl.Controller, clock: Clock, done: Callable[[], bool], step_s: float = 5.0,
              limit_s: float = 24 * 3600) -> float:
    started = clock.t
    while not done():
        assert clock.t - started < limit_s, "never happened"
        controller.tick()
        clock.t += step_s
    return clock.t - started


def test_a_healthy_candidate_is_promoted_through_every_step(store: SqliteRolloutStore, candidate: Contract) -> None:
    clock, gates = Clock(), Gates()
    state = ctl.start(store, candidate, stable_major=1, now=clock(), interval_s=INTERVAL)
    assert (state.phase, state.weight) == ("shadow", 0)
    controller = ctl.Controller(store, gates, now=clock)
    seen = []

    def promoted() -> bool:
        current = store.current(candidate.name)
        assert current is not None
        if not seen or seen[-1] != current.weight:
            seen.append(current.weight)
        return current.phase == "promoted"

    elapsed = run_until(controller, clock, promoted)
    assert seen == [0, 5, 50, 100]
    # each step holds its dwell (10 min), evaluated every interval: 4 dwells, each rounded up to an evaluation
    assert 4 * 600 <= elapsed <= 4 * (600 + INTERVAL) + 5
    kinds = [(e.kind, e.actor, e.weight) for e in store.audit(candidate.name) if e.kind != "evaluate"]
    assert kinds == [("start", "user", 0), ("step", "controller", 5), ("step", "controller", 50),
                     ("step", "controller", 100), ("promote", "controller", 100)]
    assert all(e.gates["missing_rate"]["verdict"] == "pass" for e in store.audit(candidate.name) if e.gates)


def test_a_failing_gate_aborts_within_interval_times_failure_limit(store: SqliteRolloutStore,
                                                                   candidate: Contract) -> None:
    clock, gates = Clock(), Gates()
    ctl.start(store, candidate, stable_major=1, now=clock(), interval_s=INTERVAL, failure_limit=2)
    controller = ctl.Controller(store, gates, now=clock)
    run_until(controller, clock, lambda: store.current(candidate.name).weight == 5)  # type: ignore[union-attr]
    gates.missing = 0.01  # 1 % of the candidate's online values missing from now on
    elapsed = run_until(controller, clock, lambda: store.current(candidate.name).phase == "aborted", step_s=1.0)
    state = store.current(candidate.name)
    assert state is not None and state.weight == 0
    assert elapsed <= INTERVAL * 2 + 1
    assert "gate missing_rate failed 2 consecutive evaluations: 0.01 > 0.003" in state.reason
    [abort] = [e for e in store.audit(candidate.name) if e.kind == "abort"]
    assert abort.actor == "controller" and abort.gates["missing_rate"]["value"] == 0.01


def test_one_failure_then_recovery_does_not_abort_and_inconclusive_holds_the_step(
        store: SqliteRolloutStore, candidate: Contract) -> None:
    clock, gates = Clock(), Gates()
    ctl.start(store, candidate, stable_major=1, now=clock(), interval_s=INTERVAL)
    controller = ctl.Controller(store, gates, now=clock)
    gates.missing = 0.01
    controller.tick()
    clock.t += INTERVAL
    gates.missing = 0.0
    controller.tick()
    assert store.current(candidate.name).phase == "shadow"  # type: ignore[union-attr]
    gates.missing = None  # cannot tell: no step forward, no abort
    clock.t += 3600
    for _ in range(5):
        controller.tick()
        clock.t += INTERVAL
    state = store.current(candidate.name)
    assert state is not None and (state.phase, state.weight) == ("shadow", 0)


def test_manual_promote_and_abort_win(store: SqliteRolloutStore, candidate: Contract) -> None:
    clock = Clock()
    ctl.start(store, candidate, stable_major=1, now=clock())
    with pytest.raises(RolloutRefusedError):
        ctl.start(store, candidate, stable_major=1, now=clock())  # one active rollout per contract
    stale = store.current(candidate.name)
    assert stale is not None
    aborted = ctl.abort(store, candidate.name, reason="values look wrong", now=clock())
    assert (aborted.phase, aborted.weight, aborted.reason) == ("aborted", 0, "values look wrong")
    with pytest.raises(RolloutConflictError):  # the controller's write based on the old revision loses
        store.update(stale, None)
    assert store.current(candidate.name).phase == "aborted"  # type: ignore[union-attr]
    ctl.start(store, candidate, stable_major=1, now=clock() + 1)
    promoted = ctl.promote(store, candidate.name, now=clock() + 2)
    assert (promoted.phase, promoted.weight) == ("promoted", 100)
    assert [e.actor for e in store.audit(candidate.name) if e.kind in ("abort", "promote")] == ["user", "user"]


def test_buckets_are_sticky_and_widening_only_adds_entities() -> None:
    keys = [entity_key((f"user-{i}",)) for i in range(100_000)]
    for weight in (5, 50):
        share = sum(in_candidate("r1", key, weight) for key in keys) / len(keys)
        assert abs(share - weight / 100) <= 0.01, (weight, share)
    at5 = {k for k in keys if in_candidate("r1", k, 5)}
    at50 = {k for k in keys if in_candidate("r1", k, 50)}
    assert at5 <= at50
    assert sum(in_candidate("r2", k, 5) for k in at5) < len(at5) * 0.2  # another rollout samples other entities


def test_the_same_entity_gets_the_same_major_across_two_workers_and_a_restart(
        store: SqliteRolloutStore, candidate: Contract) -> None:
    state = ctl.start(store, candidate, stable_major=1, now=time.time())
    state = store.update(state.at_step(2, time.time()), None)  # 50 %
    def worker() -> list[int]:
        out = subprocess.run([sys.executable, str(PROCS), "route", str(store.path), candidate.name, "100000"],
                             capture_output=True, text=True, timeout=120, check=True)
        return json.loads(out.stdout)
    first, second = worker(), worker()
    assert first == second
    share = first.count(2) / len(first)
    assert abs(share - 0.5) <= 0.01, share
    store.close()
    reopened = SqliteRolloutStore(store.path)  # a restart of everything: only the file remains
    assert RolloutRouter(reopened).majors(candidate.name, [(f"u{i}",) for i in range(100_000)]) == first
    reopened.close()


def test_every_worker_sees_a_weight_change_within_one_second(store: SqliteRolloutStore, candidate: Contract) -> None:
    state = ctl.start(store, candidate, stable_major=1, now=time.time())
    state = store.update(state.at_step(2, time.time()), None)
    router = RolloutRouter(SqliteRolloutStore(store.path))
    keys = [(f"u{i}",) for i in range(1000)]
    assert 2 in router.majors(candidate.name, keys)  # type: ignore[operator]
    ctl.abort(store, candidate.name, reason="test", now=time.time())
    changed_at = time.monotonic()
    while 2 in router.majors(candidate.name, keys):  # type: ignore[operator]
        assert time.monotonic() - changed_at <= 1.0 + 0.2
        time.sleep(0.01)
    assert time.monotonic() - changed_at <= 1.2


def test_a_controller_killed_mid_step_resumes_the_same_state(store: SqliteRolloutStore, candidate: Contract) -> None:
    data = candidate.model_dump(mode="json", by_alias=True)
    data["rollout"]["dwell"] = "1s"
    quick = Contract.model_validate(data)
    ctl.start(store, quick, stable_major=1, now=time.time(), interval_s=0.2)
    process = subprocess.Popen([sys.executable, str(PROCS), "control", str(store.path)], stdout=subprocess.PIPE,
                               text=True)
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 60
        while store.current(quick.name).weight < 5:  # type: ignore[union-attr]
            assert time.monotonic() < deadline
            time.sleep(0.02)
        os.kill(process.pid, signal.SIGKILL)  # mid-step: the 5 % step has started, its dwell has not passed
        process.wait(timeout=10)
        before = store.current(quick.name)
        assert before is not None and before.weight == 5 and before.active
        audit_before = len(store.audit(quick.name, 1000))
        process = subprocess.Popen([sys.executable, str(PROCS), "control", str(store.path)], stdout=subprocess.PIPE,
                                   text=True)
        assert process.stdout is not None and process.stdout.readline().strip() == "ready"
        while store.current(quick.name).phase != "promoted":  # type: ignore[union-attr]
            assert time.monotonic() < deadline
            time.sleep(0.02)
    finally:
        process.kill()
        process.wait(timeout=10)
    entries = store.audit(quick.name, 1000)
    steps = [e.weight for e in entries if e.kind in ("step", "promote")]
    assert steps == [5, 50, 100, 100]  # resumed at 5 %: no step repeated, none skipped
    assert len(entries) > audit_before


def test_once_an_abort_is_recorded_the_next_routing_decision_sends_nothing_to_the_candidate(
        store: SqliteRolloutStore, candidate: Contract) -> None:
    state = ctl.start(store, candidate, stable_major=1, now=time.time())
    store.update(state.at_step(2, time.time()), None)
    keys = [(f"u{i}",) for i in range(1000)]
    # an hour-long poll: only the per-request change check can make a worker see the abort
    watching = RolloutRouter(SqliteRolloutStore(store.path), poll_s=3600)
    polling_only = RolloutRouter(SqliteRolloutStore(store.path), poll_s=3600, watch_changes=False)
    assert 2 in watching.majors(candidate.name, keys) and 2 in polling_only.majors(candidate.name, keys)  # type: ignore[operator]
    ctl.abort(store, candidate.name, reason="test", now=time.time())  # returns once the abort is committed
    assert watching.majors(candidate.name, keys) == [1] * len(keys)
    assert 2 in polling_only.majors(candidate.name, keys)  # type: ignore[operator]  # the check is what does it


@pytest.mark.parametrize("width", [1, 2])
def test_routing_uses_the_documented_bucket_of_every_entity(store: SqliteRolloutStore, candidate: Contract,
                                                            width: int) -> None:
    state = ctl.start(store, candidate, stable_major=1, now=time.time())
    state = store.update(state.at_step(2, time.time()), None)
    keys = [tuple(f"k{i}-{j}" for j in range(width)) for i in range(5000)]
    expected = [2 if in_candidate(state.rollout_id, entity_key(key), 50) else 1 for key in keys]
    assert RolloutRouter(store).majors(candidate.name, keys) == expected
    assert 0.45 <= expected.count(2) / len(expected) <= 0.55


def test_the_controller_evaluates_on_schedule_and_reports_an_overrun(
        store: SqliteRolloutStore, candidate: Contract, caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    ctl.start(store, candidate, stable_major=1, now=clock(), interval_s=INTERVAL)
    gates = Gates()

    def slow(state: RolloutState) -> dict[str, GateValue]:
        clock.t += INTERVAL + 5  # the measurement outlasts the interval
        return gates(state)

    controller = ctl.Controller(store, slow, now=clock)
    controller.tick()
    assert controller.next_due is not None and controller.next_due - clock.t <= INTERVAL
    last = store.audit(candidate.name)[-1]
    assert last.kind == "evaluate" and "over the 60s interval" in last.detail
    assert "over the 60.00 s interval" in caplog.text
