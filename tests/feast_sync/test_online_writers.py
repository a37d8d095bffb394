"""The fast online writers store exactly what Feast stores: the same entity keys, value bytes, timestamps and Redis
hash fields as ``FeatureStore.write_to_online_store`` on the same rows (compared byte for byte, SQLite and a real
Redis), and Feast reads them back. Plus the write rule Feast lacks: replay is a no-op, a same-time correction wins."""

from __future__ import annotations

import math
import sqlite3
from datetime import timedelta

import numpy as np
import pyarrow as pa
import pytest
from conftest import NOW, user_row

from pipelines.config import Settings
from pipelines.feast_sync.online import load_commit, newest_per_entity, read_online
from pipelines.feast_sync.online_encoding import encode_entity_keys, encode_values, value_texts
from pipelines.feast_sync.online_writers import MARKER_FEATURE, MARKER_KEY
from pipelines.feast_sync.store import apply_repo, online_store_path, open_store
from pipelines.feast_sync.writer_for_store import online_writer
from pipelines.testing.redis_server import redis_feature_store

TABLE = "feature_platform_user_txn_stats_v1"
FIRST = NOW - timedelta(minutes=2)


def test_values_and_keys_encode_like_feast() -> None:
    from feast.infra.key_encoding_utils import serialize_entity_key
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.type_map import python_values_to_proto_values
    from feast.value_type import ValueType

    cases = {
        "double": ([1.5, -0.0, None, float("nan"), 1e300, -3.25], pa.float64(), ValueType.DOUBLE),
        "float": ([1.5, None, 0.1, -2.0], pa.float32(), ValueType.FLOAT),
        "int64": ([0, 1, 127, 128, 16383, 16384, -1, None, 2**62, -(2**63)], pa.int64(), ValueType.INT64),
        "int32": ([0, -5, 300, None, 2**31 - 1], pa.int32(), ValueType.INT32),
        "string": (["a", "", None, "é" * 100, "x" * 300], pa.string(), ValueType.STRING),
        "boolean": ([True, False, None], pa.bool_(), ValueType.BOOL),
    }
    for kind, (values, arrow_type, value_type) in cases.items():
        column = pa.chunked_array([pa.array(values, arrow_type)])
        feast_input = column.to_numpy(zero_copy_only=False)
        expected = [p.SerializeToString() for p in python_values_to_proto_values(feast_input, value_type)]
        assert encode_values(column, kind) == expected, kind
        texts = value_texts(column, kind)
        assert [t is None for t in texts] == [e == b"" for e in expected], kind

    rows = pa.table({"b_id": pa.array([7, -2], pa.int64()), "a_id": pa.array(["x", "ü"]),
                     "c_id": pa.array([1, 2], pa.int32())})
    ours = encode_entity_keys(rows, ["b_id", "a_id", "c_id"], ["int64", "string", "int32"])
    protos = [python_values_to_proto_values(np.array(rows.column(n).to_pylist(), dtype=object if n == "a_id" else
                                                     ("int64" if n == "b_id" else "int32")), t)
              for n, t in (("b_id", ValueType.INT64), ("a_id", ValueType.STRING), ("c_id", ValueType.INT32))]
    for i in range(2):
        key = EntityKey(join_keys=["b_id", "a_id", "c_id"], entity_values=[p[i] for p in protos])
        assert ours[i] == serialize_entity_key(key, entity_key_serialization_version=3)


def _rows(ingested_at=FIRST):
    """Twenty users with awkward values: nulls, unicode, negative and large numbers."""
    out = []
    for n in range(20):
        country = None if n % 5 == 0 else ("Ünïcode-" + "x" * n if n % 3 else "")
        row = user_row(f"user-{n}", NOW - timedelta(minutes=5), ingested_at=ingested_at,
                       count=None if n % 7 == 3 else (n - 10) * 2**n, amount=(n - 7.5) * 1.1e3, country=country)
        if n == 4:
            row["amount_avg_1h"] = math.nan
        out.append(row)
    return out


@pytest.fixture
def delta_path(settings: Settings, user_contract, write_delta):
    path = settings.delta_table_path(user_contract.table_name)
    write_delta(user_contract, path, _rows())
    return path


def _feast_write(store, contract, path) -> None:
    from deltalake import DeltaTable

    latest = newest_per_entity(DeltaTable(str(path)).to_pyarrow_table(), contract)
    store.write_to_online_store(contract.table_name, df=latest.to_pandas(types_mapper=pd_arrow_dtype()))


def pd_arrow_dtype():
    import pandas as pd

    return pd.ArrowDtype


def _sqlite_rows(settings: Settings) -> list[tuple]:
    with sqlite3.connect(online_store_path(settings)) as connection:
        rows = connection.execute(
            f"SELECT entity_key, feature_name, value, value_text, vector_value, event_ts, created_ts FROM {TABLE} "
            "WHERE feature_name != ? ORDER BY entity_key, feature_name", (MARKER_FEATURE,)).fetchall()
    connection.close()
    return rows


def test_sqlite_rows_are_identical_to_feasts(tmp_path, user_contract, delta_path) -> None:
    feast_settings = Settings(data_dir=tmp_path / "feast-wrote")
    ours_settings = Settings(data_dir=tmp_path / "we-wrote")
    feast_store, our_store = open_store(feast_settings), open_store(ours_settings)
    for store in (feast_store, our_store):
        apply_repo(store, [(user_contract, delta_path)])
    _feast_write(feast_store, user_contract, delta_path)
    result = load_commit(our_store, user_contract, delta_path)
    assert (result.rows_loaded, result.rows_written, result.full_reload) == (20, 20, True)
    expected = _sqlite_rows(feast_settings)
    assert len(expected) == 20 * len(user_contract.features)
    assert _sqlite_rows(ours_settings) == expected
    users = [{"user_id": f"user-{n}"} for n in range(20)]
    assert read_online(our_store, user_contract, users, include_event_timestamps=True) == \
        read_online(feast_store, user_contract, users, include_event_timestamps=True)


def _redis_dump(client) -> dict[bytes, dict[bytes, bytes]]:
    """Every hash in the database, without our own bookkeeping (the created-time field and the version marker)."""
    dump = {}
    for key in client.scan_iter():
        if key.startswith(MARKER_KEY):
            continue
        dump[key] = {f: v for f, v in client.hgetall(key).items() if not f.startswith(b"_created_ts:")}
    return dump


@pytest.mark.e2e
def test_redis_hashes_are_identical_to_feasts(settings, user_contract, delta_path, redis_server) -> None:
    import redis

    feast_store = redis_feature_store(settings, f"{redis_server.url},db=1")
    our_store = redis_feature_store(settings, f"{redis_server.url},db=2")
    apply_repo(feast_store, [(user_contract, delta_path)])
    _feast_write(feast_store, user_contract, delta_path)
    result = load_commit(our_store, user_contract, delta_path)
    assert (result.rows_loaded, result.rows_written) == (20, 20)
    feast_db = redis.Redis(host="127.0.0.1", port=redis_server.port, db=1)
    our_db = redis.Redis(host="127.0.0.1", port=redis_server.port, db=2)
    expected = _redis_dump(feast_db)
    assert len(expected) == 20
    assert _redis_dump(our_db) == expected
    users = [{"user_id": f"user-{n}"} for n in range(20)]
    assert read_online(our_store, user_contract, users, include_event_timestamps=True) == \
        read_online(feast_store, user_contract, users, include_event_timestamps=True)


@pytest.mark.e2e
@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_replay_is_a_no_op_and_a_same_time_correction_wins(backend, request, settings, user_contract, write_delta,
                                                           delta_path) -> None:
    if backend == "redis":
        store = redis_feature_store(settings, request.getfixturevalue("redis_server").url)
    else:
        store = open_store(settings)
    apply_repo(store, [(user_contract, delta_path)])
    first = load_commit(store, user_contract, delta_path, 0)
    assert (first.delta_version, first.rows_written, first.full_reload) == (0, 20, True)
    users = [{"user_id": "user-1"}, {"user_id": "user-2"}, {"user_id": "user-8"}]
    before = read_online(store, user_contract, users)

    replay = load_commit(store, user_contract, delta_path, 0)
    assert (replay.rows_loaded, replay.full_reload) == (20, False)
    if backend == "redis":
        assert replay.rows_written == 0  # Redis compares to the microsecond; SQLite rewrites the identical values
    assert read_online(store, user_contract, users) == before

    # Version 1: a correction of user-1 (same window, later commit) and a late, older window of user-2.
    later = FIRST + timedelta(seconds=5)
    write_delta(user_contract, delta_path, [
        user_row("user-1", NOW - timedelta(minutes=5), ingested_at=later, count=4242, amount=1.0, country="FIX"),
        user_row("user-2", NOW - timedelta(minutes=10), ingested_at=later, count=-1, amount=-1.0, country="OLD"),
    ])
    second = load_commit(store, user_contract, delta_path, 1)
    assert (second.delta_version, second.rows_loaded, second.rows_written, second.full_reload) == (1, 2, 1, False)
    after = read_online(store, user_contract, users)
    assert (after["txn_count_5m"][0], after["last_country_1h"][0]) == (4242, "FIX")
    assert [after[k][1:] for k in after] == [before[k][1:] for k in before]  # user-2 kept its newer window
    assert online_writer(store, user_contract).read_marker() == 1


def test_redis_command_framing_matches_redis_py() -> None:
    """The Redis writer frames its commands itself (one numpy pass for same-width values): the bytes must be what
    redis-py's own packer sends for the same arguments, for same-width, mixed-width and empty values."""
    from redis.connection import PythonRespSerializer

    from pipelines.feast_sync.redis_writer import _resp_bulk

    pack = PythonRespSerializer(buffer_cutoff=1 << 30, encode=lambda value: value).pack
    cases = [[b"\x29" + bytes(range(i % 248, i % 248 + 8)) for i in range(300)], [b"a", b"", b"bcd", b"\r\n" * 70],
             [b"", b""], [b"x" * 130] * 5, [b"user-%07d" % i for i in range(50)]]
    for values in cases:
        expected = b"".join(pack(*values))
        header = b"*%d\r\n" % len(values)
        assert header + _resp_bulk(values) == expected
    assert _resp_bulk([]) == b""
