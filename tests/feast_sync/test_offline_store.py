"""The Delta offline store reads the Delta snapshot, not the parquet files in the folder.

One Delta table goes through an append, a delete and an overwrite. After each, a training set
(``get_historical_features``) and a ``materialize`` into a fresh SQLite online store must show exactly the snapshot's
rows, while the removed rows are still on disk in parquet files (checked, so a store that reads files would fail).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pytest
from conftest import NOW, user_row
from deltalake import DeltaTable, write_deltalake

from pipelines.config import Settings
from pipelines.delta.schema import delta_schema
from pipelines.feast_sync.offline_store import DeltaSourceError, delta_table_uri, read_delta_snapshot
from pipelines.feast_sync.online import read_online
from pipelines.feast_sync.store import apply_repo, open_store
from pipelines.feast_sync.training import build_training_set

OLD, NEW = NOW - timedelta(minutes=10), NOW - timedelta(minutes=5)
ENTITIES = pd.DataFrame({"user_id": ["u1", "u2", "u3"], "event_timestamp": [NOW] * 3})


def _rows(contract, specs: list[tuple[str, object, int]]) -> pa.Table:
    rows = [user_row(user, end, ingested_at=NOW, count=count, amount=float(count), country=f"C{count}")
            for user, end, count in specs]
    return pa.Table.from_pylist(rows, schema=delta_schema(contract))


@pytest.fixture(scope="module")
def contract():
    from pipelines.config import PROJECT_ROOT
    from pipelines.contracts.load import load_contract

    return load_contract(PROJECT_ROOT / "contracts" / "user_txn_stats.yaml").contract


@pytest.fixture(scope="module")
def table_path(tmp_path_factory, contract) -> Path:
    path = tmp_path_factory.mktemp("delta") / contract.table_name
    write_deltalake(str(path), _rows(contract, [("u1", OLD, 1), ("u1", NEW, 2), ("u2", OLD, 3), ("u2", NEW, 4),
                                                 ("u3", NEW, 5)]))
    return path


def _counts_now(tmp_path_factory, contract, table_path: Path) -> tuple[list, list]:
    """``txn_count_5m`` per user as of NOW: from a training set, and from a materialize into a fresh online store."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("feast"))
    store = open_store(settings)
    apply_repo(store, [(contract, table_path)])
    training = build_training_set(store, contract, ENTITIES).table.column("txn_count_5m").to_pylist()
    store.materialize(start_date=NOW - timedelta(days=1), end_date=NOW + timedelta(minutes=1),
                      feature_views=[contract.table_name])
    online = read_online(store, contract, [{"user_id": u} for u in ENTITIES["user_id"]])["txn_count_5m"]
    return training, online


def _file_rows(path: Path) -> int:
    """Rows in every parquet file under the table folder: what a store ignoring the Delta log would read."""
    return ds.dataset(str(path), format="parquet", exclude_invalid_files=True).count_rows()


def test_append_delete_overwrite_follow_the_snapshot(tmp_path_factory, contract, table_path: Path) -> None:
    assert _counts_now(tmp_path_factory, contract, table_path) == ([2, 4, 5], [2, 4, 5])

    DeltaTable(str(table_path)).delete("user_id = 'u2' OR (user_id = 'u1' AND txn_count_5m = 2)")
    assert DeltaTable(str(table_path)).to_pyarrow_table().num_rows == 2
    assert _file_rows(table_path) > 2, "the deleted rows must still be on disk for this test to mean anything"
    # u1 falls back to its older window; u2 has no rows left at all.
    assert _counts_now(tmp_path_factory, contract, table_path) == ([1, None, 5], [1, None, 5])

    write_deltalake(str(table_path), _rows(contract, [("u2", OLD, 30), ("u3", NEW, 50)]), mode="overwrite")
    assert _file_rows(table_path) > 2
    assert _counts_now(tmp_path_factory, contract, table_path) == ([None, 30, 50], [None, 30, 50])


def test_an_older_version_is_not_what_is_read(tmp_path: Path, contract) -> None:
    """The reader returns exactly the rows the newest version holds, as written by this test, although the files of
    every older version (rows deleted or overwritten since) are still in the folder."""
    from feast import FileSource
    from feast.data_format import DeltaFormat

    path = tmp_path / contract.table_name
    write_deltalake(str(path), _rows(contract, [("u1", OLD, 1), ("u2", OLD, 2)]))  # v0
    write_deltalake(str(path), _rows(contract, [("u1", NEW, 3), ("u3", NEW, 4)]), mode="append")  # v1
    write_deltalake(str(path), _rows(contract, [("u4", OLD, 5), ("u5", NEW, 6), ("u1", NEW, 7)]),
                    mode="overwrite")  # v2: v0 and v1 are gone from the snapshot
    DeltaTable(str(path)).delete("user_id = 'u5'")  # v3
    write_deltalake(str(path), _rows(contract, [("u6", NEW, 8)]), mode="append")  # v4
    expected = [("u1", NEW, 7), ("u4", OLD, 5), ("u6", NEW, 8)]
    assert _file_rows(path) > len(expected), "older versions' rows must still be on disk for this test to mean anything"

    source = FileSource(name="s", path=str(path), file_format=DeltaFormat(), timestamp_field="window_end")
    snapshot = read_delta_snapshot(source, "/unused").to_pyarrow()
    want = _rows(contract, expected)
    assert snapshot.column_names == want.column_names
    got = snapshot.cast(want.schema).sort_by([("user_id", "ascending")])
    assert got.to_pylist() == want.sort_by([("user_id", "ascending")]).to_pylist()


def test_relative_paths_resolve_against_the_repository(tmp_path: Path) -> None:
    from feast import FileSource
    from feast.data_format import DeltaFormat, ParquetFormat

    relative = FileSource(name="r", path="data/t", file_format=DeltaFormat(), timestamp_field="window_end")
    assert delta_table_uri(relative, tmp_path / "repo") == str(tmp_path / "repo" / "data" / "t")
    remote = FileSource(name="s3", path="s3://bucket/t", file_format=DeltaFormat(), timestamp_field="window_end")
    assert delta_table_uri(remote, tmp_path) == "s3://bucket/t"
    parquet = FileSource(name="p", path="/x.parquet", file_format=ParquetFormat(), timestamp_field="window_end")
    with pytest.raises(DeltaSourceError, match="data source 'p' is not a Delta FileSource"):
        delta_table_uri(parquet, tmp_path)
