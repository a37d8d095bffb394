"""``source.filter``: the checked expression becomes a ``filtered`` classification in the job, rendered from its tree.

The golden file pins the generated SQL; the e2e test runs the rendered condition in Flink on real lines, so the subset
the checker allows is proven to be SQL that Flink accepts and evaluates as documented (NULL and false are filtered).
Refusals of unsafe filters are in ``broken/filter-*.yaml`` (the broken corpus).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipelines.codegen.flink_sql import build_job_sql, error_reason_expression, source_filter_sql
from pipelines.contracts.check import check_contracts
from pipelines.contracts.expressions import ExpressionError, parse_filter
from pipelines.contracts.load import load_contract

HERE = Path(__file__).resolve().parent
CONTRACT = HERE / "filtered" / "card_payments.yaml"
GOLDEN = HERE.parent / "golden" / "flink" / "card_payments_filter_classification.sql"


def _classification() -> str:
    """The part of the job the filter changes: the classification CASE (the rest is pinned by tests/codegen)."""
    contract = load_contract(CONTRACT).contract
    return error_reason_expression(contract, contract.source.allowed_lateness) + "\n"


def test_the_filtered_contract_passes_every_rule() -> None:
    [report] = check_contracts([CONTRACT])
    assert report.findings == []


def test_generated_sql_matches_the_golden_file() -> None:
    actual = _classification()
    if os.environ.get("UPDATE_GOLDEN") == "1":
        GOLDEN.write_text(actual)
    assert actual == GOLDEN.read_text(), "rerun with UPDATE_GOLDEN=1 and review the diff if the change is intended"
    assert "WHEN ((((TRY_CAST(JSON_VALUE(_line, '$.amount') AS DOUBLE) > 0) AND" in actual
    assert "IS NOT TRUE THEN 'filtered'" in actual
    assert actual.index("'bad_amount'") < actual.index("'filtered'") < actual.index("'late_event'")


def test_the_whole_job_carries_the_filter() -> None:
    from pipelines.codegen.flink_sql import OutputPaths

    contract = load_contract(CONTRACT).contract
    outputs = {contract.table_name: OutputPaths("file:///run/features", "file:///run/dead_letters")}
    job = build_job_sql([contract], {"transactions": "file:///events/transactions"}, outputs).script()
    assert source_filter_sql(contract) in job


def test_the_sql_is_rendered_from_the_tree_not_copied_from_the_text() -> None:
    contract = load_contract(CONTRACT).contract
    sql = source_filter_sql(contract)
    assert contract.source.filter not in sql
    assert "'o''brien'" in sql  # a quote inside a literal is re-escaped by the renderer
    # Whitespace and case in the text do not change the rendered SQL.
    same = parse_filter("amount>0   and channel<>'x'", {"amount": "double", "channel": "string"})
    other = parse_filter("AMOUNT > 0 AND channel <> 'x'".replace("AMOUNT", "amount"),
                         {"amount": "double", "channel": "string"})
    assert same.render(str) == other.render(str) == "((amount > 0) AND (channel <> 'x'))"


@pytest.mark.parametrize("text", [
    "amount > 0) OR (1 = 1",
    "amount > 0 UNION SELECT * FROM t",
    "amount > 0' OR '1'='1",
    "amount > (SELECT MAX(amount) FROM t)",
    "amount IN (SELECT amount FROM t)",
    "amount > 0 AND `channel` = 'x'",
    "amount > 0 AND current_user() = 'x'",
])
def test_injection_attempts_are_refused(text: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        parse_filter(text, {"amount": "double", "channel": "string"})
    assert caught.value.rule in {"filter-syntax", "filter-unsafe", "filter-type"}
    assert caught.value.message


@pytest.mark.e2e
def test_flink_evaluates_the_rendered_filter() -> None:
    from pyflink.table import EnvironmentSettings, TableEnvironment

    from pipelines.jvm.java import ensure_java_home

    ensure_java_home()
    contract = load_contract(CONTRACT).contract
    lines = {
        '{"user_id": "u", "amount": 5.0, "channel": "web", "event_ts": "2026-01-01T00:00:00Z"}': None,
        # SQL's three-valued logic, as documented: `channel <> 'o''brien'` is NULL for a missing channel, so the
        # whole condition is not TRUE and the event is filtered although `channel IS NULL OR ...` allows it.
        '{"user_id": "u", "amount": 5.0, "event_ts": "2026-01-01T00:00:00Z"}': "filtered",
        '{"user_id": "u", "amount": 0, "channel": "web", "event_ts": "2026-01-01T00:00:00Z"}': "filtered",
        '{"user_id": "u", "amount": 5.0, "channel": "TEST", "event_ts": "2026-01-01T00:00:00Z"}': "filtered",
        '{"user_id": "u", "channel": "web", "event_ts": "2026-01-01T00:00:00Z"}': "filtered",  # NULL amount
        '{"user_id": "u", "amount": 5.0, "channel": "o\'brien", "event_ts": "2026-01-01T00:00:00Z"}': "filtered",
        '{"user_id": "u", "amount": "x", "channel": "web", "event_ts": "2026-01-01T00:00:00Z"}': "bad_amount",
    }
    env = TableEnvironment.create(EnvironmentSettings.in_batch_mode())
    env.get_config().set("parallelism.default", "1")
    values = ", ".join("('" + line.replace("'", "''") + "', FALSE)" for line in lines)
    # The classification without the watermark rule (batch VALUES have no rowtime): everything up to `filtered`.
    case = error_reason_expression(contract, contract.source.allowed_lateness)
    case = case.split("    WHEN _rowtime <=")[0] + "    ELSE NULL\n  END"
    table = env.sql_query(f"SELECT _line, {case} AS reason FROM (VALUES {values}) AS t(_line, _line_too_large)")
    with table.execute().collect() as rows:
        got = {row[0]: row[1] for row in rows}
    assert got == lines
