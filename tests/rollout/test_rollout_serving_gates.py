"""Shadow reads and the serving-side gates end to end, over real HTTP: real Delta tables of majors 1 and 2 of
user_txn_stats, the real Feast SQLite online store loaded by the platform's loader, a real ``feature-platform serve``
(two workers, Prometheus multiprocess mode) routing from the shared SQLite rollout store, and serving's ``/metrics``
scraped by the gates (:class:`~pipelines.health.serve_signals.ServingInterval`).

Faults are injected into the candidate's real stores: values rewritten or rows deleted in its online table, users
deleted from its Delta table (a new major that stopped computing some entities: its own health signals cannot see
that, only the entities clients ask it for can).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest
import redis
import requests
from deltalake import DeltaTable
from prometheus_client.parser import text_string_to_metric_families

from pipelines.config import HealthDefaults, Settings
from pipelines.feast_sync.online_encoding import encode_values
from pipelines.feast_sync.store import online_store_path, open_store
from pipelines.health.serve_signals import ServingInterval
from pipelines.rollout import controller as ctl
from pipelines.rollout.gates import HealthGates, serving_gates
from pipelines.serving.catalog import load_catalog, view_spec
from pipelines.serving.stores import parse_redis_url
from pipelines.serving.values import KeyEncoder
from pipelines.testing.rollout_stack import USERS, RolloutStack, build_stack
from tests.rollout.clients import FEATURES, Clients

pytestmark = pytest.mark.e2e

INTERVAL = 60.0
DWELL = 600.0
USER_KEY = KeyEncoder(("user_id",), ("string",))


@pytest.fixture(autouse=True)
def generous_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Serve's store deadline for these tests (the servers inherit the environment): on a loaded machine a 50 ms read
    budget turns slow stable reads into fallbacks and read errors, which is not what these tests measure. Shadow
    reads run under the same deadline, so a shadow read cannot hold a worker longer than a served read can."""
    monkeypatch.setenv("FP_SERVE__DEADLINE_MS", "1000")


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[RolloutStack]:
    built = build_stack(tmp_path)
    yield built
    built.close()


def metrics_of(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = requests.get(url + "/metrics", timeout=10).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def series(samples: dict, name: str, **labels: str) -> dict[str, float]:
    """Values of ``name`` whose labels include ``labels``, keyed by their remaining label values joined by '/'."""
    out = {}
    for (sample, tags), value in samples.items():
        tags = dict(tags)
        if sample == name and all(tags.get(k) == v for k, v in labels.items()):
            out["/".join(v for k, v in sorted(tags.items()) if k not in labels)] = value
    return out


def wait_for_comparisons(url: str, expected: int, timeout: float = 15.0) -> dict:
    """Shadow reads finish after the answers: wait until ``expected`` entities were compared (or dropped)."""
    deadline = time.monotonic() + timeout
    while True:
        samples = metrics_of(url)
        done = (sum(series(samples, "fp_rollout_shadow_comparisons_total", contract="user_txn_stats").values())
                + sum(series(samples, "fp_rollout_shadow_dropped_total").values()))
        if done >= expected or time.monotonic() > deadline:
            return samples
        time.sleep(0.1)


def candidate_table(settings: Settings) -> str:
    with sqlite3.connect(online_store_path(settings)) as db:
        return next(name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")
                    if name.endswith("user_txn_stats_v2"))


def key(user: str) -> bytes:
    return USER_KEY.keys({"user_id": [user]}, [0])[0]


def request(url: str, users: list[str]) -> requests.Response:
    return requests.post(url + "/get-online-features", timeout=10, json={"features": FEATURES,
                                                                         "entities": {"user_id": users}})


class CandidateValues:
    """The candidate major's (v2) online values of user_txn_stats in the real store the stack serves from."""

    def __init__(self, stack: RolloutStack) -> None:
        self.settings = stack.settings
        self.view = view_spec(stack.v2, load_catalog(stack.settings).project)

    def amount(self, user: str) -> bytes:
        raise NotImplementedError

    def set_amount(self, user: str, value: bytes) -> None:
        raise NotImplementedError

    def drop(self, user: str, feature: str | None = None) -> None:
        """Delete the user's candidate row (every feature), or only ``feature``."""
        raise NotImplementedError


class SqliteCandidate(CandidateValues):
    def _run(self, sql: str, *args: object) -> list[tuple]:
        with sqlite3.connect(online_store_path(self.settings)) as db:
            return db.execute(sql.replace("{table}", self.view.sqlite_table), args).fetchall()

    def amount(self, user: str) -> bytes:
        return self._run("SELECT value FROM {table} WHERE entity_key = ? AND feature_name = 'amount_sum_5m'",
                         key(user))[0][0]

    def set_amount(self, user: str, value: bytes) -> None:
        self._run("UPDATE {table} SET value = ? WHERE entity_key = ? AND feature_name = 'amount_sum_5m'", value,
                  key(user))

    def drop(self, user: str, feature: str | None = None) -> None:
        if feature is None:
            self._run("DELETE FROM {table} WHERE entity_key = ?", key(user))
        else:
            self._run("DELETE FROM {table} WHERE entity_key = ? AND feature_name = ?", key(user), feature)


class RedisCandidate(CandidateValues):
    """Feast's Redis layout: one hash per entity (key + project) holding every view's fields."""

    def __init__(self, stack: RolloutStack) -> None:
        super().__init__(stack)
        self.client = redis.Redis(**parse_redis_url(stack.settings.redis_url))
        self.project = load_catalog(stack.settings).project.encode()

    def amount(self, user: str) -> bytes:
        return self.client.hget(key(user) + self.project, self.view.features["amount_sum_5m"].redis_field)

    def set_amount(self, user: str, value: bytes) -> None:
        self.client.hset(key(user) + self.project, self.view.features["amount_sum_5m"].redis_field, value)

    def drop(self, user: str, feature: str | None = None) -> None:
        names = list(self.view.features) if feature is None else [feature]
        fields = [self.view.features[name].redis_field for name in names]
        if feature is None:
            fields.append(self.view.redis_ts_field)
        assert self.client.hdel(key(user) + self.project, *fields) == len(fields)


@pytest.fixture(params=["sqlite", "redis"])
def shadow_stack(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[RolloutStack, CandidateValues]]:
    redis_url = request.getfixturevalue("redis_server").url if request.param == "redis" else None
    built = build_stack(tmp_path, redis_url=redis_url)
    try:
        yield built, (RedisCandidate(built) if redis_url else SqliteCandidate(built))
    finally:
        built.close()


def test_shadow_compares_the_candidate_and_serves_only_the_stable_major(shadow_stack) -> None:
    stack, candidate = shadow_stack
    changed, nudged, gone, partial = USERS[0:7], USERS[7], USERS[10:15], USERS[20]
    for user in [*changed, nudged]:
        amount = 10.0 + USERS.index(user)  # what the stack wrote (pipelines.testing.rollout_stack.table_rows)
        assert encode_values(pa.array([amount], pa.float64()), "double")[0] == candidate.amount(user)
        new = amount + 1.0 if user in changed else amount * (1 + 1e-9)  # within the documented tolerance
        candidate.set_amount(user, encode_values(pa.array([new], pa.float64()), "double")[0])
    for user in gone:
        candidate.drop(user)
    candidate.drop(partial, "txn_count_5m")
    ctl.start(stack.rollouts, stack.v2, stable_major=1, now=time.time(), stable=stack.v1)
    asked = USERS[:200]
    for start in range(0, len(asked), 50):
        response = request(stack.server.url, asked[start:start + 50])
        assert response.status_code == 200, response.text
        assert response.headers["x-served-versions"] == "user_txn_stats=" + ",".join(["1"] * 50)
        assert response.headers["x-fallbacks"] == "0"  # nothing late, nothing missing: the stable major answered
        body = response.json()
        amounts = body["results"][2]["values"]
        assert amounts == [10.0 + USERS.index(u) for u in asked[start:start + 50]]  # the stable values, unchanged
    samples = wait_for_comparisons(stack.server.url, len(asked))
    assert series(samples, "fp_rollout_shadow_dropped_total") == {}
    assert series(samples, "fp_rollout_shadow_comparisons_total", contract="user_txn_stats") == {
        "match": 200 - 7 - 5 - 1, "differ": 7 + 1, "candidate_missing": 5}
    assert series(samples, "fp_rollout_shadow_differences_total", contract="user_txn_stats") == {
        "amount_sum_5m/different": 7, "txn_count_5m/stable_only": 1}
    assert series(samples, "fp_rollout_shadow_entities_total", contract="user_txn_stats") == {
        "present": 200 - 5 - 1, "missing": 5, "fallback": 1}
    reads = series(samples, "fp_rollout_shadow_read_seconds_count", contract="user_txn_stats")
    assert reads == {"1": 4, "2": 4}
    # nothing was served by the candidate, and no request was answered late (shed by its deadline)
    assert series(samples, "fp_serve_version_requests_total", contract="user_txn_stats") == {"1": 200}
    assert series(samples, "fp_serve_shed_total", reason="deadline") in ({}, {"": 0.0})
    assert series(samples, "fp_serve_version_entities_total", contract="user_txn_stats", version="1") == {
        "present": 200}


class Clock:
    def __init__(self) -> None:
        self.t = time.time()

    def __call__(self) -> float:
        return self.t


def with_serve_metrics(stack: RolloutStack) -> Settings:
    return stack.settings.model_copy(update={"health": HealthDefaults(serve_metrics_url=stack.server.url + "/metrics")})


def test_a_candidate_missing_entities_for_clients_is_aborted_by_the_serving_gates_alone(stack: RolloutStack) -> None:
    # the fault: the candidate stopped computing the last 400 users (deleted from its Delta table and online store);
    # its own health signals (over the entities it does compute) stay green
    dropped = USERS[1600:]
    DeltaTable(str(stack.settings.delta_table_path(stack.v2.table_name))).delete("user_id >= 'user-01600'")
    with sqlite3.connect(online_store_path(stack.settings)) as db:
        db.executemany(f"DELETE FROM {candidate_table(stack.settings)} WHERE entity_key = ?",
                       [(key(u),) for u in dropped])
    clock = Clock()
    gates = HealthGates(with_serve_metrics(stack), lambda _state: stack.v2, store=open_store(stack.settings))
    ctl.start(stack.rollouts, stack.v2, stable_major=1, now=clock(), interval_s=INTERVAL, stable=stack.v1)
    controller = ctl.Controller(stack.rollouts, gates, now=clock)
    with Clients(stack.server.url, USERS[:1600]) as clients:  # shadow: clients ask only for users it computes
        while stack.rollouts.current("user_txn_stats").weight < 5:  # type: ignore[union-attr]
            time.sleep(1.5)  # real traffic in every interval
            changed = controller.tick()
            assert changed, "the controller evaluated nothing"
            assert changed[0].phase != "aborted", changed[0].reason
            clock.t += DWELL
        shadow_gates = [e.gates for e in stack.rollouts.audit("user_txn_stats") if e.gates][-1]
        assert shadow_gates["serve_missing_rate"]["verdict"] == "pass", shadow_gates
        assert "shadow reads" in shadow_gates["serve_missing_rate"]["detail"]
        clients.population = USERS  # now clients ask for every user; 5 % are routed to the candidate
        ticks = 0
        while stack.rollouts.current("user_txn_stats").phase != "aborted":  # type: ignore[union-attr]
            time.sleep(1.5)
            controller.tick()
            clock.t += INTERVAL
            ticks += 1
            assert ticks <= 2, "not aborted within the failure limit (2 evaluations)"
        aborted_at = datetime.now(UTC).timestamp()
        time.sleep(0.5)
    state = stack.rollouts.current("user_txn_stats")
    assert state is not None and "gate serve_missing_rate failed 2 consecutive" in state.reason, state.reason
    last = [e for e in stack.rollouts.audit("user_txn_stats") if e.kind == "abort"][-1].gates
    assert {name: last[name]["verdict"] for name in ("missing_rate", "freshness", "null_rate")} == {
        "missing_rate": "pass", "freshness": "pass", "null_rate": "pass"}, last
    assert last["serve_missing_rate"]["value"] > 0.1, last["serve_missing_rate"]  # ~20 % of its entities
    assert "served entities" in last["serve_missing_rate"]["detail"]
    assert last["error_rate"]["verdict"] == "pass"
    assert clients.codes and set(clients.codes) == {200}, clients.codes
    after = [majors for sent, majors in clients.served if sent > aborted_at]
    assert after and all(major == 1 for majors in after for major in majors)


def test_a_serving_gate_ignores_what_happened_before_its_interval(stack: RolloutStack) -> None:
    ctl.start(stack.rollouts, stack.v2, stable_major=1, now=time.time(), stable=stack.v1)
    interval = ServingInterval(stack.server.url + "/metrics", timeout_s=5.0)
    ghosts = [f"ghost-{n}" for n in range(400)]  # entities no major has: every shadow read of them is missing
    for start in range(0, len(ghosts), 50):
        assert request(stack.server.url, ghosts[start:start + 50]).status_code == 200
    wait_for_comparisons(stack.server.url, len(ghosts))
    before = serving_gates(stack.v2, interval.signals("user_txn_stats", 2, shadow=True))
    assert before["serve_missing_rate"].verdict == "fail" and before["serve_missing_rate"].value == 1.0
    for start in range(0, 200, 50):
        assert request(stack.server.url, USERS[start:start + 50]).status_code == 200
    wait_for_comparisons(stack.server.url, len(ghosts) + 200)
    now = serving_gates(stack.v2, interval.signals("user_txn_stats", 2, shadow=True))
    assert now["serve_missing_rate"].verdict == "pass" and now["serve_missing_rate"].value == 0.0, now
    assert now["fallback_rate"].verdict == "pass" and now["error_rate"].verdict == "pass"
    assert "of 200 entities" in now["serve_missing_rate"].detail
    # cumulative since start, the same server would still fail: 400 of 600 shadow reads missing
    totals = series(metrics_of(stack.server.url), "fp_rollout_shadow_entities_total", contract="user_txn_stats")
    assert totals == {"missing": 400, "present": 200}
    quiet = serving_gates(stack.v2, interval.signals("user_txn_stats", 2, shadow=True))
    assert quiet["serve_missing_rate"].verdict == "inconclusive"  # no request in the interval: holds, never fails
