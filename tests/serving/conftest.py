"""Fixtures for the serving tests: a real online store (SQLite file or redis-server) loaded by the platform's own
loader from a real Delta table, and real ``feature-platform serve`` processes on 127.0.0.1 reading it.

The contracts folder holds only ``user_txn_stats`` (so ``/ready`` needs only its view). Rows: fresh users, a user
whose newest value is three days old (the contract's TTL is one day), a user whose values are stored nulls.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import requests
from deltalake import write_deltalake

from pipelines.config import PROJECT_ROOT, Settings
from pipelines.contracts.load import load_contract
from pipelines.contracts.model import Contract
from pipelines.delta.schema import delta_schema
from pipelines.feast_sync.online import load_latest_online
from pipelines.feast_sync.store import apply_repo, open_store
from pipelines.testing.redis_server import REDIS_SERVER, RedisServer, redis_feature_store
from pipelines.testing.serve_process import ServeProcess

NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
VIEW = "user_txn_stats_v1"
FRESH = ["u1", "u2", "u3"]
STALE = "u_stale"
NULLS = "u_nulls"
FEATURES = ["txn_count_5m", "amount_sum_5m", "amount_sum_1h", "amount_avg_1h", "amount_max_1h",
            "distinct_merchants_1h", "last_country_1h"]


def user_row(user_id: str, window_end: datetime, count: int | None, amount: float | None,
             country: str | None) -> dict[str, Any]:
    return {"user_id": user_id, "window_start": window_end - timedelta(minutes=5), "window_end": window_end,
            "txn_count_5m": count, "amount_sum_5m": amount, "amount_sum_1h": None if amount is None else amount * 12,
            "amount_avg_1h": None if amount is None else amount / 3, "amount_max_1h": None if amount is None
            else amount + 1, "distinct_merchants_1h": None if count is None else count % 7,
            "last_country_1h": country, "ingested_at": NOW}


def rows() -> list[dict[str, Any]]:
    out = [user_row(user, NOW - timedelta(minutes=5 * n), 10 * n + 1, 100.25 * (n + 1), f"C{n}")
           for n, user in enumerate(FRESH)]
    out.append(user_row(STALE, NOW - timedelta(days=3), 7, 70.5, "OLD"))
    out.append(user_row(NULLS, NOW, None, None, None))
    return out


@dataclass
class Store:
    """A loaded online store: its settings, the Feast store over it, and the env a server needs to read it."""

    settings: Settings
    feast: Any
    env: dict[str, str]
    contract: Contract


@pytest.fixture(scope="session")
def serving_root(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Contract, Path]:
    """A contracts folder with user_txn_stats only, and its Delta table written with the rows above."""
    root = tmp_path_factory.mktemp("serving")
    contracts = root / "contracts"
    contracts.mkdir()
    shutil.copy(PROJECT_ROOT / "contracts" / "user_txn_stats.yaml", contracts)
    contract = load_contract(contracts / "user_txn_stats.yaml").contract
    delta = root / "delta" / VIEW
    write_deltalake(str(delta), pa.Table.from_pylist(rows(), schema=delta_schema(contract)), mode="append")
    return contracts, contract, delta


def _env(settings: Settings, **extra: str) -> dict[str, str]:
    return {"FP_DATA_DIR": str(settings.data_dir), "FP_CONTRACTS_DIR": str(settings.contracts_dir),
            "FP_ONLINE_STORE": settings.online_store, "FP_REDIS_URL": settings.redis_url, **extra}


@pytest.fixture(scope="session")
def sqlite_store(serving_root, tmp_path_factory) -> Store:
    contracts, contract, delta = serving_root
    settings = Settings(data_dir=tmp_path_factory.mktemp("sqlite") / "data", contracts_dir=contracts)
    store = open_store(settings)
    apply_repo(store, [(contract, delta)])
    load_latest_online(store, contract, delta)
    return Store(settings, store, _env(settings), contract)


@pytest.fixture(scope="session")
def redis(tmp_path_factory) -> Iterator[RedisServer]:
    """A redis-server for the session; skipped locally when Redis is not installed, never under CI=true."""
    if not Path(REDIS_SERVER).exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"redis-server not found at {REDIS_SERVER} (CI=true: the Redis tests must run)")
        pytest.skip(f"redis-server not installed ({REDIS_SERVER})")
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_store(serving_root, redis, tmp_path_factory) -> Store:
    contracts, contract, delta = serving_root
    settings = Settings(data_dir=tmp_path_factory.mktemp("redis-data") / "data", contracts_dir=contracts,
                        online_store="redis", redis_url=redis.url)
    apply_repo(open_store(settings), [(contract, delta)])  # the registry (a file) is applied once
    store = redis_feature_store(settings, redis.url)
    load_latest_online(store, contract, delta)
    return Store(settings, store, _env(settings), contract)


@pytest.fixture
def start_server(tmp_path) -> Iterator[Callable[..., ServeProcess]]:
    """``start_server(store, FP_SERVE__X="1")`` -> a running ``feature-platform serve``; stopped at the end."""
    started: list[ServeProcess] = []

    def start(store: Store, **env: str) -> ServeProcess:
        server = ServeProcess({"FP_SERVE__WORKERS": "1", **store.env, **env}, log=tmp_path / f"serve{len(started)}.log")
        started.append(server)
        server.start()
        return server

    yield start
    for server in started:
        server.stop()


def online(server: ServeProcess, body: Any, **kwargs: Any) -> requests.Response:
    data = body if isinstance(body, bytes | str) else None
    return requests.post(server.url + "/get-online-features", data=data, json=None if data is not None else body,
                         timeout=10, **kwargs)


def by_name(response: dict[str, Any]) -> dict[str, dict[str, list[Any]]]:
    """Feast's response as {feature name: {values, statuses, event_timestamps}} (Feast orders features arbitrarily
    within a view: clients must go by ``metadata.feature_names``)."""
    names = response["metadata"]["feature_names"]
    return {name: {key: result.get(key) for key in ("values", "statuses", "event_timestamps")}
            for name, result in zip(names, response["results"], strict=True)}


def metric(server: ServeProcess, name: str, **labels: str) -> float:
    """The value of one sample of ``/metrics`` (0 when absent)."""
    text = requests.get(server.url + "/metrics", timeout=10).text
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        sample = head[len(name):]
        if sample.startswith("{"):
            pairs = dict(part.split("=", 1) for part in sample.strip("{}").split(",") if part)
            if {k: v.strip('"') for k, v in pairs.items()} != labels:
                continue
        elif labels or sample:
            continue
        return float(value)
    return 0.0
