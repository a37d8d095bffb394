"""The generated SQL for lines of any content and for every event-time format (the e2e runs are in tests/jobs).

What a change here means for the parse-once path: the dead-letter reasons and their order are the contract both
paths honour (docs/contracts.md, "Dead-letter reasons").
"""

from __future__ import annotations

import pytest

from pipelines.codegen.flink_sql import (
    DEFAULT_MAX_LINE_BYTES,
    OutputPaths,
    build_job_sql,
    error_reason_expression,
)
from pipelines.config import PROJECT_ROOT
from pipelines.contracts.load import load_contract
from pipelines.contracts.model import Contract
from pipelines.layout import DEAD_LETTER_LINE_CHARS
from pipelines.sources.location import FileSource, KafkaSource


def _contract(**source: object) -> Contract:
    loaded = load_contract(PROJECT_ROOT / "contracts" / "user_txn_stats.yaml").contract
    data = loaded.model_dump(by_alias=True)
    data["source"].update(source)
    return Contract.model_validate(data)


def _script(contract: Contract, location: object = "file:///events", **kwargs: object) -> str:
    outputs = {contract.table_name: OutputPaths("file:///f", "file:///d")}
    return build_job_sql([contract], {contract.source.name: location}, outputs, **kwargs).script()


def _reasons(contract: Contract) -> list[str]:
    case = error_reason_expression(contract, contract.source.allowed_lateness)
    return [line.rsplit("THEN '", 1)[1].rstrip("'") for line in case.splitlines() if "THEN '" in line]


def test_reasons_about_the_line_itself_come_first_in_a_fixed_order() -> None:
    reasons = _reasons(_contract())
    assert reasons[:4] == ["too_large", "invalid_utf8", "malformed_json", "missing_user_id"]
    assert reasons[-1] == "late_event"


def test_files_and_kafka_read_lines_with_fp_lines_and_its_byte_limit() -> None:
    for location in ("file:///events", KafkaSource("t", "127.0.0.1:9092", "g")):
        sql = _script(_contract(), location, max_line_bytes=4096)
        assert "'format' = 'fp-lines'" in sql and "'fp-lines.max-line-bytes' = '4096'" in sql
        assert "  _line STRING,\n  _line_too_large BOOLEAN,\n" in sql
        assert "'format' = 'raw'" not in sql


def test_without_the_jar_kafka_falls_back_to_raw_and_computes_the_limit_in_characters() -> None:
    kafka = _script(_contract(), KafkaSource("t", "127.0.0.1:9092", "g"), line_format="csv")
    assert f"_line_too_large AS CHAR_LENGTH(_line) > {DEFAULT_MAX_LINE_BYTES}," in kafka
    assert "'format' = 'raw'" in kafka and "fp-lines" not in kafka


def test_a_kafka_topic_has_one_reader_whatever_the_jobs_parallelism() -> None:
    kafka = _script(_contract(), KafkaSource("t", "127.0.0.1:9092", "g"))
    assert "'scan.parallelism' = '1'," in kafka
    assert "scan.parallelism" not in _script(_contract())


def test_the_csv_fallback_keeps_the_same_columns() -> None:
    sql = _script(_contract(), FileSource("file:///events"), line_format="csv")
    assert "'format' = 'csv'" in sql and "fp-lines" not in sql
    assert "_line_too_large AS CHAR_LENGTH(_line) >" in sql


def test_dead_letters_keep_a_bounded_prefix_of_the_line() -> None:
    assert f"SUBSTR(_line, 1, {DEAD_LETTER_LINE_CHARS})\nFROM `user_txn_stats_v1__classified`" in _script(_contract())


def test_a_limit_below_one_byte_is_refused() -> None:
    with pytest.raises(ValueError, match="max_line_bytes"):
        _script(_contract(), max_line_bytes=0)


def test_iso8601_accepts_an_offset_and_the_default_format_is_iso8601() -> None:
    assert _contract().source.event_time_format == "iso8601"
    sql = _script(_contract())
    assert "TIMESTAMPADD(MINUTE, -(TRY_CAST(SUBSTR(JSON_VALUE(_line, '$.event_ts')" in sql
    assert "TO_TIMESTAMP_LTZ" not in sql


@pytest.mark.parametrize(("time_format", "factor"), [("epoch_s", "1000"), ("epoch_ms", "1"), ("epoch_us", "0.001")])
def test_epoch_formats_scale_to_milliseconds_and_bound_the_range(time_format: str, factor: str) -> None:
    sql = _script(_contract(event_time_format=time_format))
    millis = f"TRY_CAST(JSON_VALUE(_line, '$.event_ts') AS DECIMAL(38, 6)) * {factor}"
    assert f"CASE WHEN {millis} BETWEEN 0 AND 253402300799999 THEN CAST(TO_TIMESTAMP_LTZ(CAST({millis} AS BIGINT)" \
        in sql
    # the rowtime and the bad_event_time rule parse the same way
    assert sql.count(f"CASE WHEN {millis} BETWEEN") == 2
    assert "THEN 'bad_event_time'" in sql


def test_contracts_sharing_a_source_must_agree_on_the_event_time_format() -> None:
    first = _contract()
    second = _contract(event_time_format="epoch_ms")
    data = second.model_dump(by_alias=True)
    data["name"] = "other_stats"
    second = Contract.model_validate(data)
    outputs = {c.table_name: OutputPaths("file:///f", "file:///d") for c in (first, second)}
    with pytest.raises(ValueError, match="event-time format"):
        build_job_sql([first, second], {"transactions": "file:///e"}, outputs)


def test_an_unknown_event_time_format_is_refused_by_the_model() -> None:
    with pytest.raises(ValueError, match="event_time_format"):
        _contract(event_time_format="rfc2822")
