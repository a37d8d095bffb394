"""Training sets are point-in-time correct: compared with an independent as-of join written here with pandas.

The Delta table holds three days of 5-minute windows for a few users, with gaps (one longer than the contract's TTL of
one day) and replayed windows committed later with other values. ``amount_sum_5m`` encodes each row's ``window_end``,
so every value in the training set can be traced to the window it came from and checked against the row's timestamp.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import write_deltalake
from typer.testing import CliRunner

from pipelines.config import PROJECT_ROOT, Settings, get_settings
from pipelines.contracts.load import load_contract
from pipelines.delta.schema import delta_schema
from pipelines.feast_sync.store import apply_repo, is_applied, open_store
from pipelines.feast_sync.training import TrainingSetError, build_training_set, prepare_entities

START = datetime(2026, 3, 1, tzinfo=UTC)
STEP = timedelta(minutes=5)
WINDOWS = 3 * 24 * 12
USERS = [f"u{i}" for i in range(12)]
FEATURES = ["txn_count_5m", "amount_sum_5m", "amount_sum_1h", "amount_avg_1h", "amount_max_1h",
            "distinct_merchants_1h", "last_country_1h"]


def _minutes(ts: datetime | pd.Timestamp) -> float:
    return (ts - START).total_seconds() / 60


def _feature_rows(contract, rng: np.random.Generator) -> pd.DataFrame:
    rows = []
    for number, user in enumerate(USERS):
        kept = rng.random(WINDOWS) < 0.3
        if number < 3:  # a gap of 30 hours in day two: rows after it are beyond the 1-day TTL of the row before
            kept[12 * 24: 12 * 54] = False
        for index in np.flatnonzero(kept):
            end = START + (index + 1) * STEP
            committed = end + timedelta(minutes=1)
            rows.append(_row(user, end, committed, count=int(rng.integers(0, 50)), version=0))
            if rng.random() < 0.1:  # replayed later with corrected values: the later commit must win
                rows.append(_row(user, end, committed + timedelta(hours=2), count=int(rng.integers(50, 99)),
                                 version=1))
    return pd.DataFrame(rows)


def _row(user: str, end: datetime, committed: datetime, *, count: int, version: int) -> dict:
    encoded = _minutes(end) + version / 10  # window_end in minutes, plus which commit
    return {"user_id": user, "window_start": end - STEP, "window_end": end, "txn_count_5m": count,
            "amount_sum_5m": encoded, "amount_sum_1h": encoded * 2, "amount_avg_1h": count / 3,
            "amount_max_1h": float(count), "distinct_merchants_1h": None if count % 11 == 0 else count % 7,
            "last_country_1h": f"C{count}", "ingested_at": committed}


def _entities(rng: np.random.Generator, rows: pd.DataFrame) -> pd.DataFrame:
    span = (WINDOWS + 12 * 24) * 5 * 60  # the table's three days and one more
    random_times = [START - timedelta(hours=1) + timedelta(seconds=int(s)) for s in rng.integers(0, span, 1500)]
    exact = rows.sample(200, random_state=1)  # exactly at a window_end: that window counts
    users = [*rng.choice([*USERS, "nobody"], len(random_times)), *exact["user_id"]]
    times = [*random_times, *exact["window_end"]]
    frame = pd.DataFrame({"user_id": users, "event_timestamp": pd.to_datetime(times, utc=True),
                          "label": rng.integers(0, 2, len(users))})
    return pd.concat([frame, frame.head(20)], ignore_index=True)  # duplicate entity rows stay duplicated


def reference_as_of(entities: pd.DataFrame, rows: pd.DataFrame, ttl: timedelta) -> pd.DataFrame:
    """The independent answer: newest commit per window, then for each entity row the latest window ending at or
    before its timestamp (pandas merge_asof), dropped when it ended more than ``ttl`` before."""
    newest = (rows.sort_values(["user_id", "window_end", "ingested_at"])
              .drop_duplicates(["user_id", "window_end"], keep="last"))
    left = entities.reset_index(names="row").sort_values("event_timestamp")
    joined = pd.merge_asof(left, newest.sort_values("window_end")[["user_id", "window_end", *FEATURES]],
                           left_on="event_timestamp", right_on="window_end", by="user_id", direction="backward",
                           allow_exact_matches=True)
    expired = joined["event_timestamp"] - joined["window_end"] > ttl
    joined.loc[expired, FEATURES] = None
    joined["expired"] = expired
    return joined.sort_values("row").set_index("row")


@pytest.fixture(scope="module")
def contract():
    return load_contract(PROJECT_ROOT / "contracts" / "user_txn_stats.yaml").contract


@pytest.fixture(scope="module")
def world(tmp_path_factory, contract):
    """The Delta table, an applied store on a temporary data folder, entity rows and the training set."""
    rng = np.random.default_rng(5)
    settings = Settings(data_dir=tmp_path_factory.mktemp("training") / "data")
    rows = _feature_rows(contract, rng)
    path = settings.delta_table_path(contract.table_name)
    table = pa.Table.from_pandas(rows, schema=delta_schema(contract), preserve_index=False)
    write_deltalake(str(path), table.slice(0, len(rows) // 2))
    write_deltalake(str(path), table.slice(len(rows) // 2), mode="append")
    store = open_store(settings)
    apply_repo(store, [(contract, path)])
    entities = _entities(rng, rows)
    return settings, store, rows, entities, build_training_set(store, contract, entities)


def _values(frame: pd.DataFrame) -> list[list]:
    return [[None if pd.isna(v) else v for v in row] for row in frame[FEATURES].itertuples(index=False)]


def test_training_set_equals_an_independent_as_of_join(world, contract) -> None:
    _, _, rows, entities, result = world
    reference = reference_as_of(entities, rows, contract.serving.ttl)
    actual = result.table.to_pandas()
    assert result.rows == len(entities)
    assert list(actual.columns) == ["user_id", "event_timestamp", "label", *FEATURES]
    assert actual["user_id"].tolist() == entities["user_id"].tolist()  # input order kept
    assert actual["label"].tolist() == entities["label"].tolist()
    assert _values(actual) == _values(reference)
    assert result.delta_version == 1
    # The comparison covers the cases that matter: exact window ends, TTL expiry, unknown users, corrections.
    assert reference["expired"].sum() > 20
    assert (reference["event_timestamp"] == reference["window_end"]).sum() >= 200
    assert (actual["user_id"] == "nobody").sum() > 20
    assert (actual["amount_sum_5m"] % 1 > 0.05).sum() > 10  # values from a later commit of the same window


def test_no_value_from_after_the_row_timestamp_leaks_in(world, contract) -> None:
    _, _, _, entities, result = world
    frame = result.table.to_pandas()
    served = frame["amount_sum_5m"].notna()
    window_end = START + pd.to_timedelta(np.floor(frame.loc[served, "amount_sum_5m"]), unit="min")
    age = frame.loc[served, "event_timestamp"] - window_end
    assert served.sum() > len(frame) / 2
    assert (age >= timedelta(0)).all(), "a value from a window ending after the row's timestamp leaked in"
    assert (age <= contract.serving.ttl).all(), "a value older than serving.ttl was served"


def test_entity_rows_are_checked(contract) -> None:
    with pytest.raises(TrainingSetError, match=r"lack column\(s\) \['ts'\]"):
        prepare_entities(pd.DataFrame({"user_id": ["u1"]}), contract, timestamp_column="ts")
    with pytest.raises(TrainingSetError, match="'event_timestamp' has 1 empty value"):
        prepare_entities(pd.DataFrame({"user_id": ["u1"], "event_timestamp": [None]}), contract)
    with pytest.raises(TrainingSetError, match=r"\['txn_count_5m'\] would collide"):
        prepare_entities(pd.DataFrame({"user_id": ["u1"], "event_timestamp": [START], "txn_count_5m": [1]}),
                         contract)
    naive = prepare_entities(pd.DataFrame({"user_id": ["u1"], "event_timestamp": ["2026-03-01 10:00:00"]}), contract)
    assert naive["event_timestamp"].iloc[0] == pd.Timestamp("2026-03-01 10:00:00", tz="UTC")


def test_command_writes_the_same_training_set_from_a_csv_file(world, contract, tmp_path: Path, monkeypatch) -> None:
    from pipelines.cli import app

    settings, store, _, entities, result = world
    entity_file = tmp_path / "entities.csv"
    as_text = entities.rename(columns={"event_timestamp": "ts"})
    as_text["ts"] = as_text["ts"].dt.strftime("%Y-%m-%d %H:%M:%S")  # naive text: read as UTC
    as_text.to_csv(entity_file, index=False)
    out = tmp_path / "out" / "training.parquet"
    apply_repo(store, [])  # an empty registry: the command must register the contracts itself
    monkeypatch.setenv("FP_DATA_DIR", str(settings.data_dir))
    get_settings.cache_clear()
    try:
        run = CliRunner().invoke(app, ["training-set", "--entities", str(entity_file), "--contract",
                                       "user_txn_stats", "--out", str(out), "--timestamp-column", "ts", "--json"])
        failed = CliRunner().invoke(app, ["training-set", "--entities", str(entity_file), "--contract",
                                          "user_txn_stats", "--out", str(out)])
    finally:
        get_settings.cache_clear()
    assert run.exit_code == 0, run.output
    assert json.loads(run.stdout)["rows"] == len(entities)
    written = pq.read_table(out)
    assert written.column_names == ["user_id", "ts", "label", *FEATURES]
    assert written.drop_columns(["ts"]).equals(result.table.drop_columns(["event_timestamp"]))
    assert written.column("ts").equals(result.table.column("event_timestamp"))
    assert is_applied(open_store(settings), [(contract, settings.delta_table_path(contract.table_name))])
    assert failed.exit_code == 1
    assert "lack column(s) ['event_timestamp']" in failed.output
