"""The parse-once variant of a generated job: the same SQL with every JSON parse of the raw line answered by one.

Flink 2.3's ``JSON_VALUE(line, '$.c')`` and ``line IS JSON OBJECT`` each parse the whole line again: the rowtime,
the classification and the parsed columns of one contract call them about eight times per line, and that parsing was
most of the job's time. This module rewrites those calls, and only those, into the parse-once Java functions
(``tools/udf/parse-once``; built by :mod:`pipelines.jvm.udf_jar`):

* the ISO-8601 parse of a key's value (:func:`~.flink_sql.iso8601_to_utc_sql` over
  ``JSON_VALUE(_line, '$.<column>')``, about twenty reads of the value, evaluated for the rowtime and again for
  ``bad_event_time``) → ``FP_EVENT_TIME(_line, '<column>')``
* ``JSON_VALUE(_line, '$.<column>')`` → ``FP_JSON_VALUE(_line, '<column>')``
* ``_line IS JSON OBJECT`` → ``FP_IS_JSON_OBJECT(_line)``

Each returns exactly what the SQL it replaces returns (same JSON provider, same number rendering, same failures, the
same runtime functions for the time's steps; ``tests/codegen/test_parse_once.py`` checks them on corpora of odd lines
and odd times in a real job), and all the rules around them (casts, the epoch time formats, the order of the
dead-letter reasons, lateness, filters) stay the generated SQL's own.
So the classification cannot drift between the two paths: there is one definition, :mod:`.flink_sql`, and this is a
mechanical substitution over its text. A call the patterns do not match is left as it is (still correct, only
slower), and a job without any match is returned unchanged.

Only column names the contract model accepts (``[a-z][a-z0-9_]*``) can appear in the paths, so the patterns are
exact. Pure text in, text out: no PyFlink import.
"""

from __future__ import annotations

import re
from dataclasses import replace

from pipelines.codegen.flink_sql import LINE, JobSql, iso8601_to_utc_sql, json_value_sql

#: SQL names of the functions and their Java classes.
JSON_VALUE_FUNCTION = "FP_JSON_VALUE"
IS_JSON_OBJECT_FUNCTION = "FP_IS_JSON_OBJECT"
EVENT_TIME_FUNCTION = "FP_EVENT_TIME"
JAVA_CLASSES = {
    EVENT_TIME_FUNCTION: "featureplatform.udf.EventTime",
    JSON_VALUE_FUNCTION: "featureplatform.udf.JsonFieldValue",
    IS_JSON_OBJECT_FUNCTION: "featureplatform.udf.IsJsonObject",
}

_JSON_VALUE = re.compile(rf"JSON_VALUE\({LINE}, '\$\.([a-z][a-z0-9_]*)'\)")
_IS_JSON_OBJECT = re.compile(rf"\b{LINE} IS JSON OBJECT\b")


def function_ddl() -> tuple[str, ...]:
    """The statements that register the functions (the jar must be on the job's ``pipeline.jars``)."""
    return tuple(f"CREATE TEMPORARY SYSTEM FUNCTION {name} AS '{java_class}' LANGUAGE JAVA"
                 for name, java_class in JAVA_CLASSES.items())


def rewrite_statement(statement: str) -> str:
    """One statement with its raw-line JSON calls replaced (see the module docstring)."""
    for column in sorted(set(_JSON_VALUE.findall(statement))):  # the time parses first: they contain JSON_VALUE
        parse = iso8601_to_utc_sql(json_value_sql(column))
        statement = statement.replace(parse, f"{EVENT_TIME_FUNCTION}({LINE}, '{column}')")
    statement = _JSON_VALUE.sub(lambda m: f"{JSON_VALUE_FUNCTION}({LINE}, '{m.group(1)}')", statement)
    return _IS_JSON_OBJECT.sub(f"{IS_JSON_OBJECT_FUNCTION}({LINE})", statement)


def parse_once_job(job: JobSql) -> JobSql:
    """``job`` with the functions registered first and every raw-line JSON call rewritten; unchanged if none."""
    ddl = tuple(rewrite_statement(statement) for statement in job.ddl)
    inserts = tuple(rewrite_statement(statement) for statement in job.inserts)
    if (ddl, inserts) == (job.ddl, job.inserts):
        return job
    return replace(job, ddl=(*function_ddl(), *ddl), inserts=inserts)


def uses_parse_once(job: JobSql) -> bool:
    """Whether ``job`` calls the parse-once functions (and so needs their jar)."""
    return any(name + "(" in statement for statement in (*job.ddl, *job.inserts) for name in JAVA_CLASSES)
