"""Golden-file tests of the generated Flink SQL, plus the small rules the SQL text relies on.

The golden files are the reviewable form of the generator's output: a change in them shows up in the pull request.
Run with ``UPDATE_GOLDEN=1`` to rewrite them after an intended change.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest

from pipelines.codegen.flink_sql import OutputPaths, build_job_sql, interval, quote_identifier
from pipelines.config import PROJECT_ROOT
from pipelines.contracts.load import load_contract

CONTRACTS = sorted((PROJECT_ROOT / "contracts").glob("*.yaml"))
GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "flink"


def _job_for(*names: str) -> str:
    contracts = [load_contract(PROJECT_ROOT / "contracts" / f"{name}.yaml").contract for name in names]
    sources = {c.source.name: f"file:///events/{c.source.name}" for c in contracts}
    outputs = {c.table_name: OutputPaths(f"file:///run/{c.table_name}/features",
                                         f"file:///run/{c.table_name}/dead_letters") for c in contracts}
    return build_job_sql(contracts, sources, outputs).script()


def _check_golden(name: str, actual: str) -> None:
    path = GOLDEN / f"{name}.sql"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual)
    assert path.exists(), f"{path} is missing; run with UPDATE_GOLDEN=1 to create it"
    assert actual == path.read_text(), (f"generated SQL differs from {path}; if the change is intended, rerun with "
                                        "UPDATE_GOLDEN=1 and review the diff")


@pytest.mark.parametrize("contract_file", CONTRACTS, ids=lambda p: p.stem)
def test_each_example_contract_matches_its_golden_sql(contract_file: Path) -> None:
    _check_golden(contract_file.stem, _job_for(contract_file.stem))


def test_contracts_sharing_a_source_share_one_source_table() -> None:
    sql = _job_for("user_txn_stats", "merchant_risk_profile")
    _check_golden("transactions_shared", sql)
    assert sql.count("CREATE TEMPORARY TABLE `transactions__source`") == 1
    # the watermark uses the largest lateness (1m); the 30s contract compensates in its late rule
    assert "WATERMARK FOR _rowtime AS _rowtime - INTERVAL '0 00:01:00.000' DAY TO SECOND(3)" in sql
    assert "CURRENT_WATERMARK(_rowtime) + INTERVAL '0 00:00:30.000' DAY TO SECOND(3) THEN 'late_event'" in sql


def test_sliding_contract_uses_hop_with_slide_then_size_and_filters_smaller_windows() -> None:
    sql = _job_for("session_clickstream")
    assert ("HOP(TABLE `session_clickstream_v0__good`, DESCRIPTOR(_rowtime), INTERVAL '0 00:01:00.000' DAY TO "
            "SECOND(3), INTERVAL '0 00:10:00.000' DAY TO SECOND(3))") in sql
    assert "COUNT(*) FILTER (WHERE _rowtime >= window_end - INTERVAL '0 00:01:00.000' DAY TO SECOND(3))" in sql


def test_tumbling_contract_uses_tumble() -> None:
    sql = _job_for("merchant_risk_profile")
    assert "TABLE(TUMBLE(TABLE `merchant_risk_profile_v2__good`" in sql
    assert "HOP(" not in sql and "FILTER" not in sql


@pytest.mark.parametrize(("value", "expected"), [
    (timedelta(seconds=30), "INTERVAL '0 00:00:30.000' DAY TO SECOND(3)"),
    (timedelta(hours=1), "INTERVAL '0 01:00:00.000' DAY TO SECOND(3)"),
    (timedelta(seconds=86_400 * 7 + 1.5), "INTERVAL '7 00:00:01.500' DAY TO SECOND(3)"),
    (timedelta(days=400), "INTERVAL '400 00:00:00.000' DAY(3) TO SECOND(3)"),
    (timedelta(0), "INTERVAL '0 00:00:00.000' DAY TO SECOND(3)"),
])
def test_intervals_never_use_the_two_digit_second_form(value: timedelta, expected: str) -> None:
    assert interval(value) == expected


@pytest.mark.parametrize("name", ["a`b", "1abc", "a b", "", "a;drop"])
def test_unsafe_identifiers_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="identifier"):
        quote_identifier(name)


def test_a_source_without_a_path_is_an_error() -> None:
    contract = load_contract(PROJECT_ROOT / "contracts" / "session_clickstream.yaml").contract
    with pytest.raises(ValueError, match="no events path for source `clicks`"):
        build_job_sql([contract], {}, {contract.table_name: OutputPaths("a", "b")})


def test_accepted_events_are_a_hidden_column_of_the_window_rows_not_a_branch() -> None:
    sliding = _job_for("session_clickstream")
    assert ("COUNT(*) FILTER (WHERE _rowtime >= window_end - INTERVAL '0 00:01:00.000' DAY TO SECOND(3)) AS "
            "_accepted_in_step\nFROM TABLE(HOP(") in sliding
    assert "`_accepted_in_step` BIGINT\n) WITH" in sliding
    tumbling = _job_for("merchant_risk_profile")
    assert "COUNT(*) AS _accepted_in_step\nFROM TABLE(TUMBLE(" in tumbling
    for sql in (sliding, tumbling):
        assert "accepted`" not in sql and sql.count("INSERT INTO") == 2
