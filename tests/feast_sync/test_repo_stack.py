"""The stack variant of the Feast repository (``feature_repo/stack/feature_store.yaml``: Redis online store) with the
Feast CLI against a real redis-server: apply the generated definitions, ``feast materialize`` a Delta table through
the Delta offline store, read the values back with our own store opened from the same file."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from conftest import NOW, user_row

from pipelines.config import PROJECT_ROOT, Settings
from pipelines.feast_sync.online import read_online
from pipelines.feast_sync.store import open_store, repo_config_dict

FEAST = Path(sys.executable).parent / "feast"
STACK_YAML = PROJECT_ROOT / "feature_repo" / "stack" / "feature_store.yaml"


def _feast(*args: str, data_dir: Path, redis_url: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "FP_DATA_DIR": str(data_dir), "FP_REDIS_URL": redis_url}
    return subprocess.run([str(FEAST), "-c", str(PROJECT_ROOT / "feature_repo"), "-f", str(STACK_YAML), *args],
                          env=environment, capture_output=True, text=True, timeout=300, check=False)


def test_stack_config_keeps_redis_and_pins_the_registry(settings: Settings, monkeypatch) -> None:
    monkeypatch.setenv("FP_REDIS_URL", "10.0.0.7:6380")
    config = repo_config_dict(settings, STACK_YAML)
    assert config["online_store"] == {"type": "redis", "connection_string": "10.0.0.7:6380"}
    assert config["registry"]["path"] == str(settings.data_dir / "feast" / "registry.db")
    assert config["offline_store"] == {"type": "pipelines.feast_sync.offline_store.DeltaOfflineStore"}


@pytest.mark.e2e  # the Feast CLI in a subprocess, against a redis-server
def test_feast_cli_applies_and_materializes_into_redis(settings: Settings, user_contract, write_delta, redis_server,
                                                       monkeypatch) -> None:
    path = settings.delta_table_path(user_contract.table_name)
    older, newer = NOW - timedelta(minutes=10), NOW - timedelta(minutes=5)
    write_delta(user_contract, path, [
        user_row("u1", older, ingested_at=NOW, count=1, amount=1.0, country="A"),
        user_row("u1", newer, ingested_at=NOW, count=2, amount=2.0, country="B"),
        user_row("u2", older, ingested_at=NOW, count=3, amount=3.0, country="C"),
    ])
    applied = _feast("apply", data_dir=settings.data_dir, redis_url=redis_server.url)
    assert applied.returncode == 0, applied.stderr
    # An explicit range: never materialize-incremental, whose first run starts at now - TTL.
    window = [(NOW - timedelta(days=2)).isoformat(), (NOW + timedelta(minutes=1)).isoformat()]
    materialized = _feast("materialize", *window, "--views", user_contract.table_name, data_dir=settings.data_dir,
                          redis_url=redis_server.url)
    assert materialized.returncode == 0, materialized.stderr

    monkeypatch.setenv("FP_REDIS_URL", redis_server.url)
    store = open_store(settings, STACK_YAML)
    values = read_online(store, user_contract, [{"user_id": "u1"}, {"user_id": "u2"}, {"user_id": "u3"}])
    assert values["txn_count_5m"] == [2, 3, None]
    assert values["last_country_1h"] == ["B", "C", None]
