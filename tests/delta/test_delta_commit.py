"""The commit stage on part files shaped like Flink's CSV output, into a real Delta table."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from pipelines.delta.schema import delta_schema, table_properties
from pipelines.delta.write import commit_part_files

# What Flink's CSV writer produced in a measured run: NULL is a bare \N, a real "\N" string is quoted, an empty string
# is written as nothing, timestamps are naive UTC with or without milliseconds.
PART = (
    's1,"2026-01-01 00:00:00","2026-01-01 00:10:00",3,2,1500.5,4501,12.5,p0001,1\n'
    's2,"2026-01-01 00:01:00","2026-01-01 00:11:00.000",1,1,\\N,\\N,\\N,"\\N",0\n'
    's3,"2026-01-01 00:02:00","2026-01-01 00:12:00",1,1,10.0,10,\\N,,1\n'
)


@pytest.fixture
def contract(project_contract):
    return project_contract("session_clickstream")


def test_finished_parts_become_one_append_with_exact_types_and_nulls(tmp_path: Path, contract) -> None:
    parts = tmp_path / "parts"
    parts.mkdir()
    (parts / "part-a-0-0").write_text(PART)
    (parts / ".part-b-0-1.inprogress.x").write_text("garbage that must not be read\n")
    (parts / "_SUCCESS").write_text("")
    (parts / ".staging_1").mkdir()
    (parts / ".staging_1" / "part-c").write_text("garbage\n")
    when = datetime(2026, 1, 2, tzinfo=UTC)

    result = commit_part_files(contract, parts, tmp_path / "table", ingested_at=when)

    assert (result.rows, result.files) == (3, 1)
    table = DeltaTable(str(tmp_path / "table"))
    assert table.version() == result.version
    assert all(table.metadata().configuration.get(k) == v for k, v in table_properties(contract).items())
    data = table.to_pyarrow_table().sort_by("session_id")
    assert data.schema.names == delta_schema(contract).names
    rows = data.to_pylist()
    assert rows[1]["last_page_10m"] == "\\N" and rows[1]["dwell_avg_10m"] is None and rows[1]["dwell_sum_10m"] is None
    assert rows[2]["last_page_10m"] == "" and rows[2]["max_price_seen_10m"] is None
    assert rows[0]["window_end"] == datetime(2026, 1, 1, 0, 10, tzinfo=UTC)
    assert rows[1]["window_end"] == datetime(2026, 1, 1, 0, 11, tzinfo=UTC)
    assert rows[0]["dwell_sum_10m"] == 4501 and rows[0]["dwell_avg_10m"] == 1500.5
    assert {row["ingested_at"] for row in rows} == {when}


def test_a_second_commit_appends_a_new_version(tmp_path: Path, contract) -> None:
    parts = tmp_path / "parts"
    parts.mkdir()
    (parts / "part-a-0-0").write_text(PART)
    first = commit_part_files(contract, parts, tmp_path / "table")
    second = commit_part_files(contract, parts, tmp_path / "table")
    assert second.version == first.version + 1
    assert DeltaTable(str(tmp_path / "table")).to_pyarrow_table().num_rows == 6


def test_no_finished_files_commits_nothing(tmp_path: Path, contract) -> None:
    result = commit_part_files(contract, tmp_path / "nothing", tmp_path / "table")
    assert result.rows == 0 and result.files == 0
    assert DeltaTable(str(tmp_path / "table")).to_pyarrow_table().num_rows == 0


def test_trailing_columns_come_back_and_stay_out_of_delta(tmp_path: Path, contract) -> None:
    parts = tmp_path / "parts"
    parts.mkdir()
    (parts / "part-a-0-0").write_text("".join(f"{line},{n}\n" for n, line in zip((5, 0, 7), PART.splitlines(),
                                                                                  strict=True)))
    trailing = pa.schema([("_accepted_in_step", pa.int64())])

    result = commit_part_files(contract, parts, tmp_path / "table", trailing=trailing)

    assert result.rows == 3
    assert result.trailing is not None and result.trailing.schema == trailing
    assert sorted(result.trailing["_accepted_in_step"].to_pylist()) == [0, 5, 7]
    data = DeltaTable(str(tmp_path / "table")).to_pyarrow_table()
    assert data.schema.names == delta_schema(contract).names
    assert sorted(data["session_id"].to_pylist()) == ["s1", "s2", "s3"]


# ------------------------------------------------------------------------------------ exactly once: txn + ledger

DEAD = 'malformed_json,transactions,"file:/e/x.jsonl","2026-01-01 00:00:01.5","not json"\n'


def test_a_replayed_transaction_is_skipped(tmp_path: Path, contract) -> None:
    parts = tmp_path / "parts"
    parts.mkdir()
    (parts / "part-a-0-0").write_text(PART)
    first = commit_part_files(contract, parts, tmp_path / "table", app_id="run-1", txn_version=1)
    replay = commit_part_files(contract, parts, tmp_path / "table", app_id="run-1", txn_version=1)
    other = commit_part_files(contract, parts, tmp_path / "table", app_id="backfill-1", txn_version=1)
    table = DeltaTable(str(tmp_path / "table"))
    assert (first.skipped, replay.skipped, other.skipped) == (False, True, False)
    assert replay.rows == 3 and replay.version is None
    assert table.transaction_version("run-1") == 1 and table.transaction_version("backfill-1") == 1
    assert table.to_pyarrow_table().num_rows == 6  # once for run-1, once for the other writer


def _stage(tmp_path: Path, contract, crash_at: str | None = None):
    from pipelines.delta.commit import CommitStage, dead_letter_target, feature_target

    run = tmp_path / "run"
    targets = [feature_target(contract, run / contract.table_name / "features", tmp_path / "delta" / "features"),
               dead_letter_target("clicks", {contract.table_name: run / contract.table_name / "dead_letters"},
                                  tmp_path / "delta" / "dead")]
    return CommitStage(run, targets, app_id="fp:test", crash_at=crash_at)


def _write_parts(tmp_path: Path, contract, name: str) -> None:
    folder = tmp_path / "run" / contract.table_name
    (folder / "features").mkdir(parents=True, exist_ok=True)
    (folder / "dead_letters").mkdir(parents=True, exist_ok=True)
    (folder / "features" / name).write_text("".join(f"{line},1\n" for line in PART.splitlines()))
    (folder / "dead_letters" / name).write_text(DEAD)
    (folder / "features" / f".{name}.inprogress.x").write_text("not finished\n")


def test_batches_take_each_finished_file_once(tmp_path: Path, contract) -> None:
    _write_parts(tmp_path, contract, "part-a-0-0")
    with _stage(tmp_path, contract) as stage:
        first = stage.commit_finished(attempt=1)
        assert stage.commit_finished(attempt=1) is None  # nothing new
        _write_parts(tmp_path, contract, "part-a-0-1")
        second = stage.commit_finished(attempt=1)
    assert first is not None and second is not None and (first.seq, second.seq) == (1, 2)
    features = {c.table: c for c in first.tables}[contract.table_name]
    assert features.rows == 3 and features.events_accepted == 3
    assert {c.table: c for c in first.tables}["dead_letters_clicks"].dead_letters == {
        contract.table_name: {"malformed_json": 1}}
    assert DeltaTable(str(tmp_path / "delta" / "features")).to_pyarrow_table().num_rows == 6
    dead = DeltaTable(str(tmp_path / "delta" / "dead"))
    assert dead.to_pyarrow_table().num_rows == 2 and dead.transaction_version("fp:test") == 2
    row = dead.to_pyarrow_table().to_pylist()[0]
    assert (row["contract"], row["reason"], row["payload"]) == (contract.table_name, "malformed_json", "not json")


def test_a_crash_between_plan_and_done_neither_loses_nor_duplicates(tmp_path: Path, contract) -> None:
    from pipelines.delta.commit import commit_target_files

    _write_parts(tmp_path, contract, "part-a-0-0")
    stage = _stage(tmp_path, contract)
    # crash 1: the plan is written, nothing committed
    base = tmp_path / "run" / contract.table_name
    plan = stage.ledger.plan({f"{contract.table_name}/features": [base / "features" / "part-a-0-0"],
                              f"{contract.table_name}/dead_letters": [base / "dead_letters" / "part-a-0-0"]})
    # crash 2 (on the restart): the feature table took the batch, the dead-letter table did not, no done record
    features_target = stage.targets[0]
    files = {contract.table_name: stage.ledger.paths(plan, f"{contract.table_name}/features")}
    commit_target_files(features_target, files, app_id="fp:test", txn_version=plan.seq)
    with stage:
        (recovered,) = stage.recover(attempt=2)
        assert stage.recover(attempt=3) == []
        assert stage.commit_finished(attempt=3) is None  # the planned files are claimed
    by_table = {c.table: c for c in recovered.tables}
    assert by_table[contract.table_name].skipped and not by_table["dead_letters_clicks"].skipped
    assert DeltaTable(str(tmp_path / "delta" / "features")).to_pyarrow_table().num_rows == 3
    assert DeltaTable(str(tmp_path / "delta" / "dead")).to_pyarrow_table().num_rows == 1


def test_unclaimed_events_count_what_the_next_batch_adds_and_commit_nothing(tmp_path: Path, contract) -> None:
    _write_parts(tmp_path, contract, "part-a-0-0")
    with _stage(tmp_path, contract) as stage:
        assert stage.unclaimed_events() == {contract.table_name: 3 + 1}  # 3 accepted in steps, 1 dead letter
        assert not (tmp_path / "delta" / "features").exists()
        assert stage.ledger.plans() == []
        stage.commit_finished(attempt=1)
        assert stage.unclaimed_events() == {}
        _write_parts(tmp_path, contract, "part-a-0-1")
        assert stage.unclaimed_events() == {contract.table_name: 4}
