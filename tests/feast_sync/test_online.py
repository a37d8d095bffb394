"""Online loading end to end on real components: a Delta table written with deltalake, a Feast registry and SQLite
online store in a temporary data folder, loaded with ``load_latest_online``, read back through the feature service."""

from __future__ import annotations

import sqlite3
from datetime import timedelta

import pytest
from conftest import NOW, user_row

from pipelines.feast_sync.online import load_latest_online, read_online
from pipelines.feast_sync.online_writers import MARKER_FEATURE
from pipelines.feast_sync.store import apply_repo, online_store_path, open_store

USERS = ["u1", "u2", "u3", "u4"]
FEATURES = ["txn_count_5m", "amount_sum_5m", "amount_sum_1h", "amount_avg_1h", "amount_max_1h",
            "distinct_merchants_1h", "last_country_1h"]
FIRST_COMMIT = NOW - timedelta(minutes=1)
REPLAY_COMMIT = NOW


def _end(windows_ago: int):
    return NOW - timedelta(minutes=5 * windows_ago)


@pytest.fixture
def loaded(settings, user_contract, write_delta):
    """Five windows for each of four users, then a second commit with a replayed and a late row."""
    path = settings.delta_table_path(user_contract.table_name)
    rows = [user_row(user, _end(ago), ingested_at=FIRST_COMMIT, count=10 * number + (4 - ago),
                     amount=float(100 * number + (4 - ago)), country=f"C{number}{4 - ago}")
            for number, user in enumerate(USERS, start=1) for ago in range(4, -1, -1)]
    rows[-1] = user_row("u4", _end(0), ingested_at=FIRST_COMMIT, count=None, amount=404.0, country=None)
    write_delta(user_contract, path, list(reversed(rows)))
    write_delta(user_contract, path, [
        # Replay of u2's newest window with a later commit time: the later ingested_at wins the tie.
        user_row("u2", _end(0), ingested_at=REPLAY_COMMIT, count=99, amount=999.0, country="FIX"),
        # A late row for an older window of u3: committed later, but its window is older, so it loses.
        user_row("u3", _end(2), ingested_at=REPLAY_COMMIT, count=77, amount=777.0, country="OLD"),
    ])
    store = open_store(settings)
    apply_repo(store, [(user_contract, path)])
    result = load_latest_online(store, user_contract, path, batch_rows=3)
    return store, path, result


EXPECTED = {
    "u1": [14, 104.0, 104.0 * 12, 104.0 / 2, 105.0, 14 % 7, "C14"],
    "u2": [99, 999.0, 999.0 * 12, 999.0 / 2, 1000.0, 99 % 7, "FIX"],
    "u3": [34, 304.0, 304.0 * 12, 304.0 / 2, 305.0, 34 % 7, "C34"],
    "u4": [None, 404.0, 404.0 * 12, 404.0 / 2, 405.0, None, None],
}


def _values(response: dict, index: int) -> list:
    return [response[feature][index] for feature in FEATURES]


def test_newest_row_per_entity_is_served(loaded, user_contract) -> None:
    store, _, result = loaded
    assert (result.table_name, result.delta_version, result.snapshot_rows) == ("user_txn_stats_v1", 1, 22)
    assert (result.rows_loaded, result.batches) == (4, 2)
    assert result.elapsed_seconds > 0
    response = read_online(store, user_contract, [{"user_id": user} for user in USERS], include_event_timestamps=True)
    assert response["user_id"] == USERS
    for index, user in enumerate(USERS):
        assert _values(response, index) == EXPECTED[user], user
    # The event timestamp of every served value is the window_end of the row it came from.
    assert response["amount_sum_5m__ts"] == [int(_end(0).timestamp())] * 4


def test_unknown_entity_reads_as_none(loaded, user_contract) -> None:
    store, _, _ = loaded
    response = read_online(store, user_contract, [{"user_id": "nobody"}, {"user_id": "u1"}])
    assert _values(response, 0) == [None] * len(FEATURES)
    assert _values(response, 1) == EXPECTED["u1"]


def test_reloading_the_same_snapshot_changes_nothing(loaded, settings, user_contract) -> None:
    store, path, first = loaded

    def online_rows() -> list[tuple]:
        with sqlite3.connect(online_store_path(settings)) as connection:
            return connection.execute(
                "SELECT entity_key, feature_name, value, event_ts, created_ts FROM feature_platform_user_txn_stats_v1 "
                "WHERE feature_name != ? ORDER BY entity_key, feature_name", (MARKER_FEATURE,)).fetchall()

    before = online_rows()
    assert len(before) == len(USERS) * len(FEATURES)
    again = load_latest_online(store, user_contract, path)
    assert (again.delta_version, again.rows_loaded, again.batches) == (first.delta_version, 4, 1)
    assert (again.restarts, again.full_reload) == (0, True)
    assert online_rows() == before
    response = read_online(store, user_contract, [{"user_id": user} for user in USERS])
    assert [_values(response, i) for i in range(len(USERS))] == [EXPECTED[user] for user in USERS]


def test_batch_size_must_be_positive(loaded, user_contract) -> None:
    store, path, _ = loaded
    with pytest.raises(ValueError, match="batch_rows"):
        load_latest_online(store, user_contract, path, batch_rows=0)
