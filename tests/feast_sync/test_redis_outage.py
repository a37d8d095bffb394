"""Redis outage during an online load, on a real redis-server without persistence: SIGKILL in the middle of a load
(after its first batch was acknowledged, the others held back until the server is dead), restart on the same port.
The loader retries the failed batches (RetryPolicy), notices the restart (the server's ``run_id`` changed, so
everything written before it is gone, including earlier commits) and reloads the snapshot. "Nothing lost" is checked
against a reference: the same snapshot loaded into another database of the same server with no outage must give
byte-identical hashes (and those are byte-identical to Feast's own, see test_online_writers.py)."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
import redis
from conftest import NOW, user_row
from feast.infra.key_encoding_utils import serialize_entity_key
from feast.protos.feast.types.EntityKey_pb2 import EntityKey
from feast.protos.feast.types.Value_pb2 import Value
from prometheus_client import REGISTRY

from pipelines.feast_sync.online import STAGE_NAME, load_commit, online_writer, read_online
from pipelines.feast_sync.online_writers import MARKER_KEY
from pipelines.feast_sync.store import apply_repo
from pipelines.runtime import RetryPolicy, StageConfig, TransientError
from pipelines.testing.redis_server import redis_feature_store

pytestmark = pytest.mark.e2e

USERS = 20_000
RETRY = RetryPolicy(max_attempts=40, base_delay=0.05, max_delay=0.5)
STAGE = StageConfig(workers=2, retries=39)


def _retries() -> float:
    """The online-load stage's retries so far (the process-wide Prometheus counter, over every pass of a load)."""
    return REGISTRY.get_sample_value("fp_stage_retries_total", {"stage": STAGE_NAME}) or 0.0


def _dump(client: redis.Redis) -> dict[bytes, dict[bytes, bytes]]:
    return {key: client.hgetall(key) for key in client.scan_iter(count=5000) if not key.startswith(MARKER_KEY)}


def test_kill_and_restart_mid_load_ends_with_exactly_the_right_values(settings, user_contract, write_delta,
                                                                     redis_server) -> None:
    path = settings.delta_table_path(user_contract.table_name)
    first, second = NOW - timedelta(minutes=3), NOW - timedelta(minutes=1)
    write_delta(user_contract, path, [user_row(f"u{n}", NOW - timedelta(minutes=10), ingested_at=first, count=n,
                                               amount=float(n), country="A") for n in range(USERS)])
    # Version 1 updates every other user with a newer window and a same-window correction for every tenth.
    write_delta(user_contract, path, [
        user_row(f"u{n}", NOW - timedelta(minutes=10 if n % 10 == 0 else 5), ingested_at=second, count=-n,
                 amount=n + 0.5, country="B") for n in range(0, USERS, 2)])
    store = redis_feature_store(settings, redis_server.url)
    apply_repo(store, [(user_contract, path)])
    assert load_commit(store, user_contract, path, 0, stage_config=STAGE, retry=RETRY).rows_written == USERS

    # The kill happens mid-load by construction: from the progress callback once the first of the 10 batches of
    # version 1's rows is acknowledged, while every other batch of that pass is held back until the server is dead;
    # the server comes back only after a held-back batch failed against it.
    writer = online_writer(store, user_contract)
    first_key = serialize_entity_key(EntityKey(join_keys=["user_id"], entity_values=[Value(string_val="u0")]),
                                     entity_key_serialization_version=3)  # "u0" sorts first: it is in batch 1
    write = writer.write
    killed, restarted = threading.Event(), threading.Event()
    killed_at: list[tuple[int, int]] = []
    failed_writes: list[str] = []  # list.append is atomic: two workers write

    def held_back_until_the_kill(batch, mode="newer"):
        if first_key not in batch.entity_keys and not killed.wait(timeout=60):
            raise AssertionError("the server was never killed: the first batch was not acknowledged")
        try:
            return write(batch, mode)
        except TransientError as error:
            failed_writes.append(str(error))
            raise

    def restart_later() -> None:
        deadline = time.monotonic() + 30
        while not failed_writes and time.monotonic() < deadline:
            time.sleep(0.01)
        redis_server.start()
        restarted.set()

    def kill_once(done: int, total: int) -> None:
        if not killed.is_set():
            killed_at.append((done, total))
            redis_server.kill()  # SIGKILL mid-load: version 0's data and the batch written so far are gone
            killed.set()
            threading.Thread(target=restart_later, daemon=True).start()

    writer.write = held_back_until_the_kill
    retries_before = _retries()
    try:
        result = load_commit(store, user_contract, path, 1, batch_rows=1_000, stage_config=STAGE, retry=RETRY,
                             progress=kill_once, writer=writer)
    finally:
        writer.close()
    assert restarted.wait(timeout=15)
    assert killed_at == [(1_000, USERS // 2)]  # killed once, after the first of 10 batches: the load was running
    assert failed_writes, "no batch was written while the server was down"
    assert _retries() - retries_before >= len(failed_writes)  # the stage retried every failed write
    assert result.restarts == 1 and result.full_reload  # the restart was seen and the snapshot reloaded
    assert (result.rows_loaded, result.delta_version) == (USERS, 1)

    # The reference: the same snapshot loaded into db 1 of the same server, with no outage.
    reference = redis_feature_store(settings, f"{redis_server.url},db=1")
    retries_before = _retries()
    clean = load_commit(reference, user_contract, path, 1, stage_config=STAGE, retry=RETRY)
    assert (clean.restarts, _retries() - retries_before) == (0, 0)  # without an outage: no restart, no retry
    live, expected = redis.Redis(port=redis_server.port), redis.Redis(port=redis_server.port, db=1)
    online = _dump(live)
    assert len(online) == USERS
    assert online == _dump(expected)
    values = read_online(store, user_contract, [{"user_id": u} for u in ("u0", "u1", "u2", "u10")])
    assert values["txn_count_5m"] == [0, 1, -2, -10]  # u0/u10: same window, later commit; u2: newer window
    assert values["last_country_1h"] == ["B", "A", "B", "B"]

    # A restart while no load runs loses the data and the marker: the next load notices and reloads everything.
    redis_server.kill()
    redis_server.start()
    again = load_commit(store, user_contract, path, 1, stage_config=STAGE, retry=RETRY)
    assert (again.full_reload, again.rows_written) == (True, USERS)
    assert _dump(redis.Redis(port=redis_server.port)) == online
