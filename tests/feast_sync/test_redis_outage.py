"""Redis outage during an online load, on a real redis-server without persistence: SIGKILL in the middle of a load,
restart on the same port. The loader retries the failed batches (RetryPolicy), notices the restart (the server's
``run_id`` changed, so everything written before it is gone, including earlier commits) and reloads the snapshot.
"Nothing lost" is checked against a reference: the same snapshot loaded into another database of the same server
with no outage must give byte-identical hashes (and those are byte-identical to Feast's own, see
test_online_writers.py)."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
import redis
from conftest import NOW, user_row

from pipelines.feast_sync.online import load_commit, read_online
from pipelines.feast_sync.online_writers import MARKER_KEY
from pipelines.feast_sync.store import apply_repo
from pipelines.runtime import RetryPolicy, StageConfig
from pipelines.testing.redis_server import redis_feature_store

pytestmark = pytest.mark.e2e

USERS = 20_000
RETRY = RetryPolicy(max_attempts=40, base_delay=0.05, max_delay=0.5)
STAGE = StageConfig(workers=2, retries=39)


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

    restarted = threading.Event()

    def restart_later() -> None:
        time.sleep(0.5)
        redis_server.start()
        restarted.set()

    killer = threading.Thread(target=restart_later)

    def kill_once(done: int, total: int) -> None:
        if done >= 3_000 and not killer.is_alive() and not restarted.is_set():
            redis_server.kill()  # SIGKILL mid-load: version 0's data and the batches written so far are gone
            killer.start()

    result = load_commit(store, user_contract, path, 1, batch_rows=1_000, stage_config=STAGE, retry=RETRY,
                         progress=kill_once)
    killer.join(timeout=15)
    assert restarted.is_set()
    assert result.restarts >= 1 and result.full_reload  # the restart was seen and the snapshot reloaded
    assert result.stage_metrics["retries"] >= 1 or result.restarts >= 1
    assert result.delta_version == 1

    # The reference: the same snapshot loaded into db 1 of the same server, with no outage.
    reference = redis_feature_store(settings, f"{redis_server.url},db=1")
    load_commit(reference, user_contract, path, 1, stage_config=STAGE, retry=RETRY)
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
