"""Rollouts end to end over real HTTP: real Delta tables for majors 1 and 2 of user_txn_stats, a real Feast SQLite
online store loaded by the platform's loader, a real ``feature-platform serve`` process routing per entity from the
shared SQLite rollout store, and the controller measuring the candidate with the real health-based gates.

Only the controller's clock is injected (each tick moves it by one interval), so a 10-minute dwell costs a tick.
Clients keep requesting features by contract name (no version) the whole time; every response must be a 200, and
``x-served-versions`` says which major served each entity.
"""

from __future__ import annotations

import shutil
import sqlite3
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
import requests
from deltalake import write_deltalake

from pipelines.config import PROJECT_ROOT, Settings
from pipelines.contracts.load import load_contract
from pipelines.contracts.model import Contract
from pipelines.delta.schema import delta_schema
from pipelines.feast_sync.online import load_latest_online
from pipelines.feast_sync.store import apply_repo, online_store_path, open_store
from pipelines.rollout import controller as ctl
from pipelines.rollout.gates import HealthGates
from pipelines.rollout.store import SqliteRolloutStore
from pipelines.testing.serve_process import ServeProcess

pytestmark = pytest.mark.e2e

USERS = [f"user-{i:05d}" for i in range(2000)]
INTERVAL = 60.0


def table_rows(contract: Contract, users: list[str], ingested_at: datetime, *, first_end: datetime | None = None,
               windows: int | None = None) -> pa.Table:
    """Rows of every user for ``windows`` consecutive steps from ``first_end`` (default: one complete step and the
    trailing flush windows, ending around ``ingested_at``), every feature set."""
    end = ingested_at.replace(second=0, microsecond=0) - timedelta(minutes=1)
    end -= timedelta(minutes=end.minute % 5)
    end = first_end or end
    count = windows or int((contract.max_window - contract.step) / contract.step) + 1
    rows = []
    for offset in range(count):
        window_end = end + contract.step * offset
        for n, user in enumerate(users):
            rows.append({"user_id": user, "window_start": window_end - contract.max_window, "window_end": window_end,
                         "txn_count_5m": 1 + n % 4, "amount_sum_5m": 10.0 + n, "amount_sum_1h": 40.0 + n,
                         "amount_avg_1h": 10.0, "amount_max_1h": 20.0, "distinct_merchants_1h": 2,
                         "last_country_1h": "FR", "ingested_at": ingested_at})
    return pa.Table.from_pylist(rows, schema=delta_schema(contract))


@dataclass
class Stack:
    settings: Settings
    v1: Contract
    v2: Contract
    stable_file: Path
    server: ServeProcess
    rollouts: SqliteRolloutStore


def build(root: Path, *, candidate_age: timedelta = timedelta(0)) -> Stack:
    contracts = root / "contracts"
    contracts.mkdir(parents=True)
    stable_file = root / "stable" / "user_txn_stats.yaml"
    stable_file.parent.mkdir()
    shutil.copy(PROJECT_ROOT / "contracts" / "user_txn_stats.yaml", stable_file)
    text = stable_file.read_text().replace("version: 1.0.0", "version: 2.0.0")
    (contracts / "user_txn_stats.yaml").write_text(text)
    v1, v2 = load_contract(stable_file).contract, load_contract(contracts / "user_txn_stats.yaml").contract
    settings = Settings(data_dir=root / "data", contracts_dir=contracts)
    now = datetime.now(UTC)
    for contract, age in ((v1, timedelta(0)), (v2, candidate_age)):
        write_deltalake(str(settings.delta_table_path(contract.table_name)),
                        table_rows(contract, USERS, now - age), mode="append")
    feast = open_store(settings)
    apply_repo(feast, [(c, settings.delta_table_path(c.table_name)) for c in (v1, v2)])
    for contract in (v1, v2):
        load_latest_online(feast, contract, settings.delta_table_path(contract.table_name))
    server = ServeProcess({"FP_DATA_DIR": str(settings.data_dir), "FP_CONTRACTS_DIR": str(contracts),
                           "FP_SERVE__WORKERS": "2"}, log=root / "serve.log")
    server.start()
    return Stack(settings, v1, v2, stable_file, server,
                 SqliteRolloutStore(settings.data_dir / "rollout" / "rollouts.sqlite"))


def stream_one_step(stack: Stack) -> None:
    """What the running stream does between two evaluations: commit the next step of both majors (fresh
    ``ingested_at``), so freshness stays within its gate while the rollout proceeds."""
    from deltalake import DeltaTable

    now = datetime.now(UTC)
    for contract in (stack.v1, stack.v2):
        path = str(stack.settings.delta_table_path(contract.table_name))
        newest = DeltaTable(path).to_pyarrow_table(columns=["window_end"])["window_end"]
        first = max(newest.to_pylist()) + contract.step
        write_deltalake(path, table_rows(contract, USERS, now, first_end=first, windows=1), mode="append")


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    built = build(tmp_path)
    yield built
    built.server.stop()
    built.rollouts.close()


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


class Clock:
    def __init__(self) -> None:
        self.t = datetime.now(UTC).timestamp()

    def __call__(self) -> float:
        return self.t


def test_a_healthy_candidate_is_promoted_through_every_step_over_http(stack: Stack) -> None:
    clock = Clock()
    ctl.start(stack.rollouts, stack.v2, stable_major=1, now=clock(), interval_s=INTERVAL,
              stable=load_contract(stack.stable_file).contract)
    controller = ctl.Controller(stack.rollouts, HealthGates(stack.settings, lambda _s: stack.v2), now=clock)
    shares = {}
    with Clients(stack.server.url) as clients:
        while stack.rollouts.current("user_txn_stats").phase != "promoted":  # type: ignore[union-attr]
            stream_one_step(stack)
            controller.tick()
            clock.t += INTERVAL
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


def test_a_candidate_missing_one_percent_is_aborted_with_no_failed_request(stack: Stack) -> None:
    clock = Clock()
    ctl.start(stack.rollouts, stack.v2, stable_major=1, now=clock(), interval_s=INTERVAL,
              stable=load_contract(stack.stable_file).contract)
    controller = ctl.Controller(stack.rollouts, HealthGates(stack.settings, lambda _s: stack.v2), now=clock)
    with Clients(stack.server.url) as clients:
        while stack.rollouts.current("user_txn_stats").weight < 5:  # type: ignore[union-attr]
            stream_one_step(stack)
            controller.tick()
            clock.t += INTERVAL
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
    stack = build(tmp_path, candidate_age=timedelta(minutes=20))  # freshness gate: 5 minutes
    try:
        clock = Clock()
        ctl.start(stack.rollouts, stack.v2, stable_major=1, now=clock(), interval_s=INTERVAL,
                  stable=load_contract(stack.stable_file).contract)
        controller = ctl.Controller(stack.rollouts, HealthGates(stack.settings, lambda _s: stack.v2), now=clock)
        for _ in range(2):
            controller.tick()
            clock.t += INTERVAL
        state = stack.rollouts.current("user_txn_stats")
        assert state is not None and state.phase == "aborted" and "gate freshness" in state.reason, state
        assert share_of_candidate(stack.server.url) == 0.0
    finally:
        stack.server.stop()
        stack.rollouts.close()
