"""The store of a Settings object, applying contracts to it, and the Feast CLI on the same files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.config import PROJECT_ROOT, Settings
from pipelines.feast_sync.repo import contracts_with_delta_paths
from pipelines.feast_sync.store import apply_repo, online_store_path, open_store, registry_path, repo_config_dict

FEAST = Path(sys.executable).parent / "feast"


def test_store_files_live_in_the_settings_data_folder(settings: Settings) -> None:
    config = repo_config_dict(settings)
    assert config["registry"]["path"] == str(settings.data_dir / "feast" / "registry.db")
    assert config["online_store"] == {"type": "sqlite", "path": str(settings.data_dir / "feast" / "online_store.db")}
    assert config["project"] == "feature_platform"
    assert config["entity_key_serialization_version"] == 3
    assert config["offline_store"] == {"type": "pipelines.feast_sync.offline_store.DeltaOfflineStore"}


def test_apply_is_idempotent_and_prunes_removed_contracts(settings: Settings) -> None:
    store = open_store(settings)
    contracts = contracts_with_delta_paths(settings)
    first = apply_repo(store, contracts)
    assert registry_path(settings).exists() and online_store_path(settings).exists()
    assert {f"created feature view {c.table_name}" for c, _ in contracts} <= set(first.changes)
    assert {f"created feature service {c.table_name}" for c, _ in contracts} <= set(first.changes)
    assert apply_repo(store, contracts).changes == ()

    kept = [(c, p) for c, p in contracts if c.name != "session_clickstream"]
    pruned = apply_repo(store, kept)
    assert "deleted feature view session_clickstream_v0" in pruned.changes
    assert "deleted feature service session_clickstream_v0" in pruned.changes
    assert sorted(v.name for v in store.list_feature_views()) == sorted(c.table_name for c, _ in kept)


def _feast(*args: str, data_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "FP_DATA_DIR": str(data_dir), **env}
    return subprocess.run([str(FEAST), "-c", str(PROJECT_ROOT / "feature_repo"), *args], env=environment,
                          capture_output=True, text=True, timeout=180, check=False)


@pytest.mark.e2e  # runs the Feast CLI in a subprocess
def test_feast_cli_plans_applies_and_agrees_with_our_store(settings: Settings) -> None:
    """``feast plan`` and ``feast apply`` on the generated definitions, following FP_DATA_DIR."""
    contracts = contracts_with_delta_paths(settings)
    planned = _feast("plan", data_dir=settings.data_dir)
    assert planned.returncode == 0, planned.stderr
    for contract, _ in contracts:
        assert f"Created feature view {contract.table_name}" in planned.stdout
        assert f"Created feature service {contract.table_name}" in planned.stdout
    applied = _feast("apply", data_dir=settings.data_dir)
    assert applied.returncode == 0, applied.stderr
    assert registry_path(settings).exists() and online_store_path(settings).exists()
    # Our store reads what the CLI wrote, and finds nothing to change: both describe the same project and files.
    store = open_store(settings)
    assert sorted(v.name for v in store.list_feature_views()) == sorted(c.table_name for c, _ in contracts)
    assert sorted(s.name for s in store.list_feature_services()) == sorted(c.table_name for c, _ in contracts)
    assert apply_repo(store, contracts).changes == ()
    source = store.get_feature_view("user_txn_stats_v1").batch_source
    assert source.path == str(settings.data_dir / "delta" / "user_txn_stats_v1")
    again = _feast("plan", data_dir=settings.data_dir)
    assert again.returncode == 0, again.stderr
    assert "No changes to registry" in again.stdout and "No changes to infrastructure" in again.stdout


@pytest.mark.e2e  # runs the Feast CLI in a subprocess
def test_feast_cli_stops_on_an_invalid_contract(tmp_path: Path) -> None:
    contracts = tmp_path / "contracts"
    contracts.mkdir()
    text = (PROJECT_ROOT / "contracts" / "user_txn_stats.yaml").read_text()
    (contracts / "user_txn_stats.yaml").write_text(text.replace("ttl: 1d", "ttl: soon"))
    planned = _feast("plan", data_dir=tmp_path / "data", FP_CONTRACTS_DIR=str(contracts))
    assert planned.returncode != 0
    assert "user_txn_stats.yaml:" in planned.stderr and "serving.ttl" in planned.stderr
