"""The parse-once rewrite: every raw-line JSON call becomes its parse-once twin, nothing else changes, and the twins
return exactly what Flink's own functions return (checked in a real Flink job on a corpus of odd lines)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipelines.codegen.flink_sql import JobSql, OutputPaths, build_job_sql, iso8601_to_utc_sql, json_value_sql
from pipelines.codegen.parse_once import (
    EVENT_TIME_FUNCTION,
    IS_JSON_OBJECT_FUNCTION,
    JSON_VALUE_FUNCTION,
    function_ddl,
    parse_once_job,
    uses_parse_once,
)
from pipelines.config import PROJECT_ROOT
from pipelines.contracts.load import load_contract

CONTRACTS = sorted((PROJECT_ROOT / "contracts").glob("*.yaml"))


def _job(contract_file: Path) -> JobSql:
    contract = load_contract(contract_file).contract
    return build_job_sql([contract], {contract.source.name: "file:///events"},
                         {contract.table_name: OutputPaths("file:///f", "file:///d")})


@pytest.mark.parametrize("contract_file", CONTRACTS, ids=lambda p: p.stem)
def test_every_json_call_on_the_line_is_rewritten_and_nothing_else(contract_file: Path) -> None:
    job = _job(contract_file)
    rewritten = parse_once_job(job)
    text = "\n".join((*rewritten.ddl, *rewritten.inserts))
    assert "JSON_VALUE(" not in text.replace(f"{JSON_VALUE_FUNCTION}(", "")
    assert "IS JSON OBJECT" not in text
    assert rewritten.ddl[: len(function_ddl())] == function_ddl()
    assert uses_parse_once(rewritten) and not uses_parse_once(job)
    # undoing the substitution gives back the generated job exactly: the rewrite changes nothing else
    undone = [re.sub(rf"{JSON_VALUE_FUNCTION}\(_line, '(\w+)'\)", r"JSON_VALUE(_line, '$.\1')", s)
              .replace(f"{IS_JSON_OBJECT_FUNCTION}(_line)", "_line IS JSON OBJECT")
              for s in (*rewritten.ddl[len(function_ddl()):], *rewritten.inserts)]
    undone = [re.sub(rf"{EVENT_TIME_FUNCTION}\(_line, '(\w+)'\)",
                     lambda m: iso8601_to_utc_sql(json_value_sql(m.group(1))), s) for s in undone]
    assert undone == [*job.ddl, *job.inserts]
    # the event time's parse (the rowtime, then the bad_event_time rule) is answered by one call each
    assert sum(s.count(f"{EVENT_TIME_FUNCTION}(") for s in (*rewritten.ddl, *rewritten.inserts)) >= 2
    count = sum(s.count("JSON_VALUE(_line") for s in (*job.ddl, *job.inserts))
    per_time = iso8601_to_utc_sql(json_value_sql("c")).count("JSON_VALUE(_line")
    calls = sum(s.count(f"{JSON_VALUE_FUNCTION}(") + per_time * s.count(f"{EVENT_TIME_FUNCTION}(")
                for s in rewritten.ddl + rewritten.inserts)
    assert count >= 5 and count == calls


def test_a_job_without_json_calls_is_returned_unchanged() -> None:
    job = JobSql(("CREATE TEMPORARY TABLE t (a INT) WITH ('connector' = 'datagen')",),
                 ("INSERT INTO x SELECT a FROM t",))
    assert parse_once_job(job) is job


#: Lines on which JSON parsers and JSON_VALUE's rendering of values tend to differ.
ODD_LINES = [
    '{"a":"x","n":1,"f":1.50,"e":1e3,"b":true,"z":null,"o":{"k":1},"l":[1,2]}',
    '{"a":123456789012345678901234,"n":-0,"f":-0.0,"e":1E-7}',
    '{"a":"x"} trailing', '{"a":"x",}', '{"a":"x"}{"b":1}', "{'a':'single'}", '{"a":NaN}', '{"a":1e400}',
    "[1,2,3]", '"str"', "42", "null", "", "   ", "not json", '{"a":"\\u0001\\u00e9"}', '{"a":"dup","a":"dup2"}',
    '{"a": "  spaced  "}', '{"a":1.0}', '{"a":0.1e1}', '{"a":"2026-01-01T00:00:00Z"}', '{"a":"é😀"}',
    '\ufeff{"a":1}', '{"A":1}', '{"a":12345678901234567890.5}', '{"a":true,"n":false}', '{"a":"x","a":{"k":1}}',
    '{"a":' + "[" * 1500 + "]" * 1500 + "}", '{"a":' + "[" * 900 + "]" * 900 + ',"n":1}', " {\"a\" : 7 } ",
    '{"a":"x"}\t', '{"a":"\\ud800"}', '{"a":"line\\nbreak"}', '{"n":01}', '{"n":+1}', '{"n":.5}', '{"n":1.}',
]
KEYS = ["a", "n", "f", "e", "b", "z", "o", "l", "A"]


@pytest.mark.e2e
def test_the_functions_return_what_flinks_json_functions_return(tmp_path: Path) -> None:
    pairs = ", ".join(f"JSON_VALUE(_line, '$.{k}'), {JSON_VALUE_FUNCTION}(_line, '{k}')" for k in KEYS)
    query = f"SELECT _line, _line IS JSON OBJECT, {IS_JSON_OBJECT_FUNCTION}(_line), {pairs} FROM src"
    rows = [list(row) for row in _select_over_lines(tmp_path, ODD_LINES, query)]
    assert sorted(row[0] for row in rows) == sorted(ODD_LINES)
    differences = [(row[0][:40], KEYS[(i - 1) // 2 - 1] if i > 1 else "IS JSON OBJECT", row[i], row[i + 1])
                   for row in rows for i in range(1, len(row), 2) if row[i] != row[i + 1]]
    assert differences == []
    # the corpus does exercise both answers of each function
    assert {row[1] for row in rows} == {True, False}
    assert {"1E+400", "dup2", "1.50", "true"} <= {value for row in rows for value in row[3::2]}


def _odd_times() -> list[str]:
    """JSON values for an event time: valid ISO-8601 forms, each branch's near misses, and a seeded fuzz of
    valid times with one or two characters changed or the text cut short (every branch of the SQL's ``CASE``)."""
    import json
    import random

    valid = ["2026-01-01T00:00:00Z", "2026-03-04T05:06:07.123Z", "2026-03-04 05:06:07", "2026-03-04T05:06:07",
             "2026-03-04T05:06:07+01:00", "2026-03-04T05:06:07.5-05:30", "2026-03-04T05:06:07.123456+14:00",
             "2026-03-04T05:06:07+00:00", "1970-01-01T00:00:00Z", "1970-01-01T01:00:00.000+01:00",
             "9999-12-31T23:59:59.999Z", "9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00", "2026-03-04"]
    odd = ["", ":", "+:", "-:", "Z", "T", "ab:cd", "é:é", "+01:00", "x+01:00", "2026-03-04T05:06:07+1:00",
           "2026-03-04T05:06:07+01:0", "2026-03-04T05:06:07+ab:cd", "2026-03-04T05:06:07+01:60",
           "2026-03-04T05:06:07+99:99", "2026-03-04T05:06:07 +01:00", "2026-03-04T05:06:07+01:00Z",
           "2026-03-04T05:06:07z", " 2026-03-04T05:06:07Z ", "2026-13-01T00:00:00Z", "2026-02-30T00:00:00Z",
           "2026-03-04T25:00:00Z", "2026-03-04T05:06:07*01:00", "2026-03-04T05:06:07+01:00:00", "2026-3-4T5:6:7Z",
           "2026-03-04TT05:06:07Z", "2026-03-04T05:06:07ZZ", "2026-03-04T05:06:07.Z", "2026-03-04T05:06:07.1234567Z",
           "é2026-03-04T05:06:07+01:00", "2026-03-04T05:06:07+０1:00", "20260304T050607Z", "+-1:-1", "--1:-1"]
    chars = "0123456789+-:TZ .é"
    rng = random.Random(20261130)
    fuzz = []
    for _ in range(1500):
        text = list(rng.choice(valid[:13]))
        for _ in range(rng.randint(1, 2)):
            text[rng.randrange(len(text))] = rng.choice(chars)
        fuzz.append("".join(text))
        whole = rng.choice(valid[:13])
        fuzz.append(whole[: rng.randrange(len(whole) + 1)])
    values = [json.dumps(t) for t in (*valid, *odd, *fuzz)]
    return [*values, "1700000000", "1.5", "true", "null", '{"k":1}', '["2026-01-01T00:00:00Z"]']


@pytest.mark.e2e
def test_the_event_time_function_returns_what_the_generated_sql_returns(tmp_path: Path) -> None:
    lines = [f'{{"t":{value}}}' for value in _odd_times()] + ["not json", '{"t":"2026-01-01T00:00:00Z"', "{}"]
    # compared as text: a time near 9999-12-31 with a negative offset lands in year 10000, which Python cannot hold
    query = (f"SELECT _line, CAST({iso8601_to_utc_sql(json_value_sql('t'))} AS STRING), "
             f"CAST({EVENT_TIME_FUNCTION}(_line, 't') AS STRING) FROM src")
    rows = [tuple(row) for row in _select_over_lines(tmp_path, lines, query)]
    assert sorted(row[0] for row in rows) == sorted(lines)
    differences = [row for row in rows if row[1] != row[2]]
    assert differences == []
    # the corpus reaches every branch: parsed with Z or none, with a + and a - offset, and NULL
    parsed = {row[0]: row[1] for row in rows}
    assert parsed['{"t":"2026-03-04T05:06:07+01:00"}'] == "2026-03-04 04:06:07.000"
    assert parsed['{"t":"2026-03-04T05:06:07.5-05:30"}'] == "2026-03-04 10:36:07.500"
    assert parsed['{"t":"2026-03-04T05:06:07.123Z"}'] == "2026-03-04 05:06:07.123"
    assert sum(value is None for value in parsed.values()) > 100
    assert sum(value is not None for value in parsed.values()) > 100


def _select_over_lines(tmp_path: Path, lines: list[str], query: str) -> list[object]:
    """The rows of ``query`` over a table ``src`` holding ``lines`` (one column ``_line``, read by the platform's own
    line reader), in a real Flink job with the parse-once functions registered."""
    from pipelines.codegen.flink_sql import _line_format
    from pipelines.flink.environment import FlinkOptions, create_table_environment
    from pipelines.jvm.udf_jar import parse_once_jar
    from pipelines.sources.location import FileSource

    events = tmp_path / "events"
    events.mkdir()
    (events / "lines.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    env = create_table_environment(FlinkOptions(checkpoint_dir=tmp_path / "ckpt", parallelism=1,
                                                jars=(parse_once_jar(),)))
    for statement in function_ddl():
        env.execute_sql(statement)
    env.execute_sql(f"CREATE TEMPORARY TABLE src (_line STRING) WITH ('connector' = 'filesystem', "
                    f"'path' = '{events.as_uri()}',\n{_line_format(FileSource(events.as_uri()), 'csv', 1 << 20)})")
    with env.sql_query(query).execute().collect() as results:
        return list(results)
