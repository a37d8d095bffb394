"""A real rollout stack for tests and benchmarks: Delta tables of majors 1 and 2 of ``user_txn_stats``, a Feast SQLite
online store loaded by the platform's own loader, a ``feature-platform serve`` process on 127.0.0.1 reading it, and
the shared SQLite rollout store.

Usage::

    stack = build_stack(tmp_path)          # serve is started; stop it with stack.close()
    ctl.start(stack.rollouts, stack.v2, stable_major=1, now=time.time(), stable=stack.v1)
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa

from pipelines.config import PROJECT_ROOT, Settings
from pipelines.contracts.load import load_contract
from pipelines.contracts.model import Contract
from pipelines.delta.schema import delta_schema
from pipelines.delta.write import append_once, ensure_table
from pipelines.feast_sync.online import load_latest_online
from pipelines.feast_sync.store import apply_repo, open_store
from pipelines.rollout.store import RedisRolloutStore, RolloutStore, SqliteRolloutStore
from pipelines.testing.serve_process import ServeProcess

USERS = [f"user-{i:05d}" for i in range(2000)]


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
class RolloutStack:
    settings: Settings
    v1: Contract
    v2: Contract
    server: ServeProcess
    rollouts: RolloutStore

    def close(self) -> None:
        self.server.stop()
        self.rollouts.close()


def build_stack(root: Path, *, candidate_age: timedelta = timedelta(0), workers: int = 2,
                redis_url: str | None = None, rollout_redis_url: str | None = None) -> RolloutStack:
    """Contracts folder holding v2 only (as after the merge), both tables and views, serve started. The online store
    is Feast's SQLite file, or the Redis at ``redis_url`` (Feast's connection string) when given. The rollout store
    is the SQLite file in the data folder, or Redis at ``rollout_redis_url`` (``FP_ROLLOUT_STORE=redis``; serving has
    one ``FP_REDIS_URL``, so with both given they must be the same server)."""
    if redis_url and rollout_redis_url and redis_url != rollout_redis_url:
        raise ValueError("the online store and the rollout store share FP_REDIS_URL: give the same Redis to both")
    contracts = root / "contracts"
    contracts.mkdir(parents=True)
    stable_file = root / "stable" / "user_txn_stats.yaml"
    stable_file.parent.mkdir()
    shutil.copy(PROJECT_ROOT / "contracts" / "user_txn_stats.yaml", stable_file)
    text = stable_file.read_text().replace("version: 1.0.0", "version: 2.0.0")
    (contracts / "user_txn_stats.yaml").write_text(text)
    v1, v2 = load_contract(stable_file).contract, load_contract(contracts / "user_txn_stats.yaml").contract
    online = {"online_store": "redis", "redis_url": redis_url} if redis_url else {}
    settings = Settings(data_dir=root / "data", contracts_dir=contracts, **online)
    now = datetime.now(UTC)
    for contract, age in ((v1, timedelta(0)), (v2, candidate_age)):
        path = settings.delta_table_path(contract.table_name)
        append_once(ensure_table(contract, path), table_rows(contract, USERS, now - age))
    feast = open_store(settings)
    apply_repo(feast, [(c, settings.delta_table_path(c.table_name)) for c in (v1, v2)])
    if redis_url:
        from pipelines.testing.redis_server import redis_feature_store

        feast = redis_feature_store(settings, redis_url)
    for contract in (v1, v2):
        load_latest_online(feast, contract, settings.delta_table_path(contract.table_name))
    env = {"FP_DATA_DIR": str(settings.data_dir), "FP_CONTRACTS_DIR": str(contracts),
           "FP_SERVE__WORKERS": str(workers)}
    if redis_url:
        env |= {"FP_ONLINE_STORE": "redis", "FP_REDIS_URL": redis_url}
    rollouts: RolloutStore
    if rollout_redis_url is not None:
        env |= {"FP_ROLLOUT_STORE": "redis", "FP_REDIS_URL": rollout_redis_url}
        rollouts = RedisRolloutStore(rollout_redis_url)
    else:
        rollouts = SqliteRolloutStore(settings.data_dir / "rollout" / "rollouts.sqlite")
    server = ServeProcess(env, log=root / "serve.log")
    server.start()
    return RolloutStack(settings, v1, v2, server, rollouts)


def stream_one_step(stack: RolloutStack) -> None:
    """What the running stream does between two evaluations: commit the next step of both majors (fresh
    ``ingested_at``), so freshness stays within its gate while a rollout proceeds."""
    from pipelines.delta.tables import read_table

    now = datetime.now(UTC)
    for contract in (stack.v1, stack.v2):
        path = stack.settings.delta_table_path(contract.table_name)
        ends = read_table(path, ["window_end"])
        assert ends is not None
        first = max(ends["window_end"].to_pylist()) + contract.step
        append_once(ensure_table(contract, path), table_rows(contract, USERS, now, first_end=first, windows=1))
