"""``feature-platform materialize`` end to end (a subprocess on a temporary data folder): a time range loads only
rows whose window ends inside it, a later full reload makes the store equal the snapshot; progress on stderr, JSON
on stdout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from conftest import NOW, user_row

from pipelines.config import Settings
from pipelines.feast_sync.online import read_online
from pipelines.feast_sync.store import open_store

CLI = Path(sys.executable).parent / "feature-platform"


def _materialize(settings: Settings, *args: str) -> dict:
    env = {**os.environ, "FP_DATA_DIR": str(settings.data_dir)}
    done = subprocess.run([str(CLI), "materialize", "--contract", "user_txn_stats", "--json", *args], env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_ranged_then_full_reload(settings, user_contract, write_delta) -> None:
    path = settings.delta_table_path(user_contract.table_name)
    old, new = NOW - timedelta(hours=2), NOW - timedelta(minutes=5)
    write_delta(user_contract, path, [
        user_row("a", old, ingested_at=NOW, count=1, amount=1.0, country="OLD"),
        user_row("a", new, ingested_at=NOW, count=2, amount=2.0, country="NEW"),
        user_row("b", new, ingested_at=NOW, count=3, amount=3.0, country="NEW"),
    ])
    ranged = _materialize(settings, "--start", (old - timedelta(minutes=1)).isoformat(),
                          "--end", (old + timedelta(minutes=1)).isoformat())
    [table] = ranged["tables"]
    assert (table["table"], table["rows_in_range"], table["entities"], table["written"]) == \
        ("user_txn_stats_v1", 1, 1, 1)
    store = open_store(settings)
    entities = [{"user_id": "a"}, {"user_id": "b"}]
    assert read_online(store, user_contract, entities)["last_country_1h"] == ["OLD", None]

    full = _materialize(settings)
    assert (full["start"], full["tables"][0]["entities"], full["tables"][0]["delta_version"]) == (None, 2, 0)
    assert read_online(open_store(settings), user_contract, entities)["last_country_1h"] == ["NEW", "NEW"]
