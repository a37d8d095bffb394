"""Contract → Flink SQL: the whole streaming job as text, generated from validated contracts only.

Pure functions, no PyFlink import: the SQL is reviewed as golden files (``tests/golden/flink/``) and run by
:mod:`pipelines.flink`. Every identifier comes from the validated model (``^[a-z][a-z0-9_]*$``) and is backquoted;
nothing from event data ever reaches the SQL text. Internal columns start with ``_``, which no contract name can, so
they never collide with a contract's columns.

Semantics (the contract of the generated job; the e2e test recomputes them independently):

* **One row per entity per step.** S = ``contract.step`` (shared by all features), M = ``contract.max_window``. A row is
  emitted for every window end (a multiple of S since the epoch, UTC) at which the entity has at least one good event in
  ``[window_end - M, window_end)``. ``window_start`` of the row is ``window_end - M``. If M == S the windows are
  ``TUMBLE(S)``, otherwise ``HOP(slide S, size M)``.
* **Each feature over its own size s** as of ``window_end``: events with ``window_end - s <= event_time < window_end``;
  when s < M the aggregate carries ``FILTER (WHERE _rowtime >= window_end - s)``. Over a window with no event
  ``count``, ``count_distinct`` and ``sum`` are 0 (nothing happened: a quantity, not a missing value) and ``avg``,
  ``min``, ``max`` and ``last`` are NULL (no value exists). A ``sum`` over events whose column is always null stays
  NULL: that is missing input data, and the null-rate checks must see it (docs/contracts.md, "Empty windows").
* **Aggregations:** count → ``COUNT(*)`` (``COUNT(col)`` with a column), sum → ``SUM``, avg → ``AVG`` over DOUBLE
  (Flink's AVG of integers is an integer), min/max, count_distinct → ``COUNT(DISTINCT col)``, last → the non-null
  value of the event with the latest event time; ties between events with the same event time go to the greatest
  value in its string form (``CAST(col AS STRING)``). It is ``MAX`` over a fixed-width (23 characters) timestamp
  prefix followed by the value, with the prefix stripped afterwards, so streaming and batch agree (Flink's
  ``LAST_VALUE`` follows arrival order, not event time). Every feature is cast to its declared type.
* **Events are JSON lines**, read verbatim (one row per file line or per Kafka record value: the source's location,
  see :mod:`pipelines.sources.location`, changes only the connector options and, for files, the line format: see
  :func:`_line_format`) and parsed with ``JSON_VALUE`` +
  ``TRY_CAST``. Timestamps are ISO-8601 UTC (``2026-01-01T00:00:00.123Z`` or ``2026-01-01 00:00:00``), read as
  ``TIMESTAMP(3)``. The rowtime is a non-null computed column (unparseable times become the 1970 sentinel, which
  never advances the watermark) with
  ``WATERMARK FOR _rowtime AS _rowtime - <largest allowed_lateness among the source's contracts>``.
* **Classification** (``_error_reason``, first match wins): ``malformed_json`` (not a JSON object, empty line included),
  ``missing_<key>`` per join key, ``missing_<event_time>``, ``bad_event_time``, ``missing_<col>`` per other required
  column, ``bad_<col>`` when a present value fails to cast, ``filtered`` when the contract's ``source.filter`` is not
  TRUE (rendered from its checked parse tree, see :func:`source_filter_sql`), ``late_event`` when the event time is at
  or behind the contract's own watermark (``CURRENT_WATERMARK`` plus the gap between the source's largest lateness and
  this contract's). Only rows with no reason reach the windows; the others go to the contract's dead-letter sink with
  the raw line, the reason, the source name and file, and the processing time.
* **Accepted events are counted in the window rows**, not by a branch of their own: the feature sink carries one hidden
  column after the features, ``_accepted_in_step`` = the good events in the row's last step ``[window_end - S,
  window_end)``. Every accepted event lies in exactly one such slice, and the row of that slice exists (the event is
  in its window), so the column's sum is the number of accepted events and a run can prove that accepted + dead
  letters == input lines. The commit stage sums the column and drops it before writing Delta
  (:data:`HIDDEN_FEATURE_COLUMNS`).
* **One classification per contract.** The features and the dead letters both read the contract's classified view.
  The job runs them as one statement set with ``table.optimizer.reuse-optimize-block-with-digest-enabled`` (set by
  :mod:`pipelines.flink.environment`), so the planner computes the rowtime, the watermark and the classification once
  per contract (the watermark once per source) instead of once per INSERT.
* Contracts reading the same source share ONE source table (one scan, one watermark). They must agree on the event-time
  column and on the type of every column they both declare.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from pipelines.contracts.model import Contract, EventTimeFormat, Feature
from pipelines.layout import (
    ACCEPTED_IN_STEP,
    CSV_NULL_LITERAL,
    DEAD_LETTER_COLUMNS,
    DEAD_LETTER_LINE_CHARS,
    HIDDEN_FEATURE_COLUMNS,
    WINDOW_END,
    WINDOW_START,
)
from pipelines.sources.location import FileSource, KafkaSource, SourceLocation

#: Contract column types → Flink SQL types.
FLINK_TYPES: dict[str, str] = {
    "string": "STRING",
    "int32": "INT",
    "int64": "BIGINT",
    "float": "FLOAT",
    "double": "DOUBLE",
    "boolean": "BOOLEAN",
    "timestamp": "TIMESTAMP(3)",
}

LINE = "_line"
#: TRUE when the line was longer than the limit (files: the reader kept its first ``max_line_bytes`` bytes).
LINE_TOO_LARGE = "_line_too_large"
ROWTIME = "_rowtime"
ERROR_REASON = "_error_reason"
SOURCE_FILE = "_source_file"
#: Kafka metadata columns of a Kafka source table (they make its ``_source_file``).
KAFKA_TOPIC, KAFKA_PARTITION, KAFKA_OFFSET = "_kafka_topic", "_kafka_partition", "_kafka_offset"
ROWTIME_SENTINEL = "TIMESTAMP '1970-01-01 00:00:00'"
#: Longest line used, in bytes (of a file line or a Kafka record value; characters on the ``raw`` fallback for
#: Kafka); longer ones are ``too_large``.
DEFAULT_MAX_LINE_BYTES = 1 << 20
#: How a source reads lines: the platform's ``fp-lines`` format (:mod:`pipelines.jvm.line_format`; any bytes, decoded
#: with replacement, exact restore positions for files), or, when its jar cannot be built, ``csv`` for files (a line
#: holding U+0001 or bytes that are not UTF-8 fails the job there) and ``raw`` for Kafka.
LineFormat = Literal["fp-lines", "csv"]
#: Kafka sources are read by one task (``scan.parallelism``) whatever the job's parallelism: see
#: :func:`_connector_options` and docs/sources.md, "Parallelism and idle partitions". None (one reader per task, the
#: old plan) exists only for the side-by-side benchmark ``benchmarks/kafka_single_reader.py``.
KAFKA_READER_PARALLELISM: int | None = 1
#: ``CAST(TIMESTAMP(3) AS STRING)`` is always ``yyyy-MM-dd HH:mm:ss.SSS``: the prefix used by ``last``.
_TIMESTAMP_TEXT_WIDTH = 23



@dataclass(frozen=True)
class OutputPaths:
    """Where one contract's job writes: window rows (with the hidden columns) and dead letters (folders, as URIs)."""

    features: str
    dead_letters: str


@dataclass(frozen=True)
class JobSql:
    """The generated job: DDL to run first (in order), then the INSERTs that form one statement set."""

    ddl: tuple[str, ...]
    inserts: tuple[str, ...]
    #: Source tables read by one task whatever the job's parallelism (Kafka, :data:`KAFKA_READER_PARALLELISM`): at a
    #: job parallelism above 1, everything between such a table's reader and the first keyed exchange must run at
    #: parallelism 1 as well (:mod:`pipelines.flink.single_reader`; docs/sources.md, "Parallelism and idle
    #: partitions"). Not part of :meth:`script`: it describes how the SQL must be run, not the SQL.
    single_reader_tables: tuple[str, ...] = ()

    def script(self) -> str:
        """The whole job as one SQL script (what golden files hold and what a person reviews)."""
        return "".join(f"{statement};\n\n" for statement in (*self.ddl, *self.inserts)).rstrip("\n") + "\n"


# ---------------------------------------------------------------------------------------------------------- helpers


def quote_identifier(name: str) -> str:
    """Backquote a model identifier; refuse anything that is not one (defence in depth: the model already checks)."""
    if not name or not (name[0].isalpha() or name[0] == "_") or not all(c.isalnum() or c == "_" for c in name):
        raise ValueError(f"not a safe SQL identifier: {name!r}")
    return f"`{name}`"


def quote_literal(text: str) -> str:
    """A SQL string literal (single quotes doubled)."""
    return "'" + text.replace("'", "''") + "'"


def interval(value: timedelta) -> str:
    """A Flink interval literal for any duration.

    ``INTERVAL 'n' SECOND`` allows two digits only and ``SECOND(4)`` fails at code generation, so every interval is
    written as ``DAY TO SECOND(3)`` (``'d hh:mm:ss.fff'``), which Flink accepts in watermarks, window TVFs and filters.
    """
    millis = round(value.total_seconds() * 1000)
    if millis < 0:
        raise ValueError(f"negative interval: {value}")
    days, rest = divmod(millis, 86_400_000)
    hours, rest = divmod(rest, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    precision = f"({len(str(days))})" if days > 99 else ""
    return f"INTERVAL '{days} {hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}' DAY{precision} TO SECOND(3)"


def json_value_sql(column: str) -> str:
    """``JSON_VALUE`` of a top-level key of the raw line (what the parse-once rewrite looks for)."""
    return f"JSON_VALUE({LINE}, '$.{column}')"


#: Epoch unit → the factor to milliseconds (``epoch_*`` event-time formats).
_EPOCH_TO_MILLIS = {"epoch_s": "1000", "epoch_ms": "1", "epoch_us": "0.001"}
#: Largest epoch value accepted, in milliseconds: 9999-12-31T23:59:59.999Z (beyond it the conversion would fail).
_MAX_EPOCH_MILLIS = 253_402_300_799_999


def _parse_timestamp(raw: str, time_format: EventTimeFormat = "iso8601") -> str:
    """``raw`` (text) as a UTC ``TIMESTAMP(3)``, NULL when it is not a time in ``time_format``."""
    if time_format == "iso8601":
        return iso8601_to_utc_sql(raw)
    millis = f"TRY_CAST({raw} AS DECIMAL(38, 6)) * {_EPOCH_TO_MILLIS[time_format]}"
    return (f"CASE WHEN {millis} BETWEEN 0 AND {_MAX_EPOCH_MILLIS} "
            f"THEN CAST(TO_TIMESTAMP_LTZ(CAST({millis} AS BIGINT), 3) AS TIMESTAMP(3)) END")


def iso8601_to_utc_sql(raw: str) -> str:
    """``raw`` (ISO-8601 text with ``Z``, an offset or neither) as a UTC ``TIMESTAMP(3)``, NULL when it is not one.

    The parse-once path replaces this exact text, applied to :func:`json_value_sql`, with ``FP_EVENT_TIME``
    (``tools/udf/parse-once``: ``EventTime.java``), which evaluates the same steps once per call.
    """
    # 'T' and 'Z' are rewritten to the SQL form TRY_CAST understands; a trailing offset ``+hh:mm``/``-hh:mm`` (found by
    # position, cheaper than a regular expression on every line) is cut off and subtracted, giving UTC.
    utc = f"TRY_CAST(REPLACE(REPLACE({raw}, 'T', ' '), 'Z', '') AS TIMESTAMP(3))"
    length = f"CHAR_LENGTH({raw})"
    local = f"TRY_CAST(REPLACE(SUBSTR({raw}, 1, {length} - 6), 'T', ' ') AS TIMESTAMP(3))"
    minutes = (f"(TRY_CAST(SUBSTR({raw}, {length} - 4, 2) AS INT) * 60 + "
               f"TRY_CAST(SUBSTR({raw}, {length} - 1, 2) AS INT))")
    sign, colon = f"SUBSTR({raw}, {length} - 5, 1)", f"SUBSTR({raw}, {length} - 2, 1)"
    return (f"CASE WHEN {colon} <> ':' THEN {utc} "
            f"WHEN {sign} = '+' THEN TIMESTAMPADD(MINUTE, -{minutes}, {local}) "
            f"WHEN {sign} = '-' THEN TIMESTAMPADD(MINUTE, {minutes}, {local}) "
            f"ELSE {utc} END")


def _parse(column: str, column_type: str, time_format: EventTimeFormat = "iso8601") -> str:
    """A source column parsed from the line; ``time_format`` applies to a timestamp column (the event time's)."""
    raw = json_value_sql(column)
    if column_type == "string":
        return raw
    if column_type == "timestamp":
        return _parse_timestamp(raw, time_format)
    return f"TRY_CAST({raw} AS {FLINK_TYPES[column_type]})"


def _parse_column(contract: Contract, column: str) -> str:
    """A column of ``contract``'s source, parsed with the event-time format when it is the event time."""
    source = contract.source
    time_format = source.event_time_format if column == source.event_time else "iso8601"
    return _parse(column, source.columns[column].type, time_format)


def _table(*parts: str) -> str:
    return quote_identifier("__".join(parts))


# ------------------------------------------------------------------------------------------------------- the source


@dataclass(frozen=True)
class _SourceGroup:
    name: str
    event_time: str
    event_time_format: EventTimeFormat
    max_lateness: timedelta
    contracts: tuple[Contract, ...]


def _group_by_source(contracts: Sequence[Contract]) -> list[_SourceGroup]:
    groups: dict[str, list[Contract]] = {}
    for contract in contracts:
        groups.setdefault(contract.source.name, []).append(contract)
    result = []
    for name, members in groups.items():
        event_times = {c.source.event_time for c in members}
        if len(event_times) != 1:
            raise ValueError(f"contracts reading source `{name}` disagree on its event-time column: "
                             f"{sorted(event_times)}")
        time_formats = {c.source.event_time_format for c in members}
        if len(time_formats) != 1:
            raise ValueError(f"contracts reading source `{name}` disagree on its event-time format: "
                             f"{sorted(time_formats)}")
        declared: dict[str, str] = {}
        for contract in members:
            for column, spec in contract.source.columns.items():
                if declared.setdefault(column, spec.type) != spec.type:
                    raise ValueError(f"contracts reading source `{name}` disagree on the type of `{column}`: "
                                     f"{declared[column]} vs {spec.type}")
        result.append(_SourceGroup(name, event_times.pop(), time_formats.pop(),
                                   max(c.source.allowed_lateness for c in members), tuple(members)))
    return result


def source_table_ddl(group: _SourceGroup, location: SourceLocation | str, *, line_format: LineFormat = "fp-lines",
                     max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> str:
    """The source table: one raw line per row, whether it was too large, the rowtime and the watermark; the
    connector depends on the location.

    A file source names the file in ``_source_file``; a Kafka source names ``kafka://<topic>/<partition>/<offset>``
    (from the connector's metadata), so a dead letter can be found again either way.
    """
    location = FileSource(location) if isinstance(location, str) else location
    if max_line_bytes < 1:
        raise ValueError(f"max_line_bytes must be at least 1, got {max_line_bytes}")
    rowtime = (f"COALESCE({_parse_timestamp(json_value_sql(group.event_time), group.event_time_format)}, "
               f"{ROWTIME_SENTINEL})")
    reads_lines = line_format == "fp-lines"  # the reader decodes and flags too-large lines itself (files and Kafka)
    too_large = (f"  {LINE_TOO_LARGE} BOOLEAN,\n" if reads_lines
                 else f"  {LINE_TOO_LARGE} AS CHAR_LENGTH({LINE}) > {max_line_bytes},\n")
    if isinstance(location, KafkaSource):
        origin = (f"  {KAFKA_TOPIC} STRING METADATA FROM 'topic' VIRTUAL,\n"
                  f"  {KAFKA_PARTITION} INT METADATA FROM 'partition' VIRTUAL,\n"
                  f"  {KAFKA_OFFSET} BIGINT METADATA FROM 'offset' VIRTUAL,\n"
                  f"  {SOURCE_FILE} AS CONCAT('kafka://', {KAFKA_TOPIC}, '/', CAST({KAFKA_PARTITION} AS STRING), '/', "
                  f"CAST({KAFKA_OFFSET} AS STRING)),\n")
    else:
        origin = f"  {SOURCE_FILE} STRING METADATA FROM 'file.path' VIRTUAL,\n"
    columns = too_large + origin if reads_lines else origin + too_large
    options = "".join(f"  {quote_literal(key)} = {quote_literal(value)},\n"
                      for key, value in _connector_options(location))
    return (
        f"CREATE TEMPORARY TABLE {_table(group.name, 'source')} (\n"
        f"  {LINE} STRING,\n"
        f"{columns}"
        f"  {ROWTIME} AS {rowtime},\n"
        f"  WATERMARK FOR {ROWTIME} AS {ROWTIME} - {interval(group.max_lateness)}\n"
        f") WITH (\n"
        f"{options}"
        f"{_line_format(location, line_format, max_line_bytes)}"
        f")"
    )


def _line_format(location: SourceLocation, line_format: LineFormat, max_line_bytes: int) -> str:
    """One row per line or record, whatever its bytes.

    ``fp-lines``, the platform's own format (tools/formats/fp-lines), for files and Kafka alike: it decodes UTF-8
    with replacement (bytes that are not UTF-8 become U+FFFD, which the ``invalid_utf8`` rule sees) and flags a line
    or record value longer than ``max_line_bytes`` bytes, keeping only that prefix. Files need it because Flink
    2.3's ``raw`` file reader (``DeserializationSchemaAdapter``) forgets, after a restore, the records it skipped (the
    restored job's checkpoints count from 0 and a second restore re-reads the input), and its ``csv`` reader fails
    the job on a line holding its delimiter (U+0001) or bytes that are not UTF-8, and splits a line at a lone CR.
    Kafka needs it because the ``raw`` format hands a record's bytes to SQL undecoded, so invalid bytes were never
    seen as U+FFFD. When the jar cannot be built (``line_format="csv"``), files fall back to ``csv`` and Kafka to
    ``raw`` (there a record that is not UTF-8 but otherwise valid JSON is accepted, and the limit counts
    characters)."""
    if line_format == "fp-lines":
        return f"  'format' = 'fp-lines',\n  'fp-lines.max-line-bytes' = '{max_line_bytes}'\n"
    if isinstance(location, KafkaSource):
        return "  'format' = 'raw',\n  'raw.charset' = 'UTF-8'\n"
    return ("  'format' = 'csv',\n  'csv.field-delimiter' = U&'\\0001',\n"
            "  'csv.disable-quote-character' = 'true',\n  'csv.allow-comments' = 'false'\n")


def _offsets(offsets: Mapping[int, int]) -> str:
    return ";".join(f"partition:{partition},offset:{offset}" for partition, offset in sorted(offsets.items()))


def _connector_options(location: SourceLocation) -> list[tuple[str, str]]:
    if isinstance(location, FileSource):
        options = [("connector", "filesystem"), ("path", location.uri)]
        if location.monitor_interval is not None:
            millis = max(1, round(location.monitor_interval.total_seconds() * 1000))
            options.append(("source.monitor-interval", f"{millis}ms"))
        return options
    # One reader for the whole topic (per-partition watermarks and idleness inside it): the classification sees the
    # one merged watermark the windows see. The planner puts a rebalance behind it; at a job parallelism above 1 the
    # job is run with the stage up to the first keyed exchange at parallelism 1 instead (JobSql.single_reader_tables,
    # pipelines.flink.single_reader; docs/sources.md, "Parallelism and idle partitions").
    options = [("connector", "kafka")]
    if KAFKA_READER_PARALLELISM is not None:
        options.append(("scan.parallelism", str(KAFKA_READER_PARALLELISM)))
    options += [("topic", location.topic), ("properties.bootstrap.servers", location.bootstrap_servers),
                ("properties.group.id", location.group_id), ("scan.startup.mode", location.startup_mode)]
    if location.startup_mode == "group-offsets":  # a new group starts at the beginning instead of failing
        options.append(("properties.auto.offset.reset", "earliest"))
    if location.start_offsets is not None:
        options.append(("scan.startup.specific-offsets", _offsets(location.start_offsets)))
    if location.bounded_mode != "unbounded":
        options.append(("scan.bounded.mode", location.bounded_mode))
    if location.stop_offsets is not None:
        options.append(("scan.bounded.specific-offsets", _offsets(location.stop_offsets)))
    return options


# ------------------------------------------------------------------------------------------------- classification


def _required_columns(contract: Contract) -> list[str]:
    """Join keys, then the event time, then other required columns: the order of the ``missing_*`` rules."""
    source = contract.source
    ordered = [*contract.entity.join_keys, source.event_time]
    ordered += [name for name, col in source.columns.items() if col.required and name not in ordered]
    return ordered


def error_reason_expression(contract: Contract, max_lateness: timedelta) -> str:
    """The CASE expression that names why a line cannot be used (NULL when it can)."""
    source = contract.source
    rules = [(LINE_TOO_LARGE, "too_large"),
             (f"POSITION(U&'\\FFFD' IN {LINE}) > 0", "invalid_utf8"),
             (f"{LINE} IS NULL OR NOT ({LINE} IS JSON OBJECT)", "malformed_json")]
    for column in _required_columns(contract):
        rules.append((f"{json_value_sql(column)} IS NULL", f"missing_{column}"))
        if column == source.event_time:
            rules.append((f"{_parse_column(contract, column)} IS NULL", "bad_event_time"))
    for name, spec in source.columns.items():
        if spec.type != "string" and name != source.event_time:
            rules.append((f"{json_value_sql(name)} IS NOT NULL AND {_parse_column(contract, name)} IS NULL",
                          f"bad_{name}"))
    if source.filter is not None:
        rules.append((f"({source_filter_sql(contract)}) IS NOT TRUE", "filtered"))
    late_bound = f"CURRENT_WATERMARK({ROWTIME})"
    gap = max_lateness - source.allowed_lateness
    if gap > timedelta(0):
        late_bound = f"{late_bound} + {interval(gap)}"
    rules.append((f"{ROWTIME} <= {late_bound}", "late_event"))
    whens = "".join(f"    WHEN {condition} THEN '{reason}'\n" for condition, reason in rules)
    return f"CASE\n{whens}    ELSE NULL\n  END"


def source_filter_sql(contract: Contract) -> str:
    """The contract's ``source.filter`` as Flink SQL over the parsed columns, rendered from the checked parse tree.

    The filter is untrusted text from a pull request: :func:`pipelines.contracts.expressions.parse_filter` refuses
    anything outside a small safe subset, and only the re-rendered tree (never the text) reaches the job. Events for
    which it is not TRUE are classified ``filtered`` (dead letters), so accepted + dead letters still equals the input.
    """
    from pipelines.contracts.expressions import parse_filter

    columns = contract.source.columns
    if contract.source.filter is None:
        raise ValueError(f"contract `{contract.name}` has no source filter")
    safe = parse_filter(contract.source.filter, {name: spec.type for name, spec in columns.items()})
    return safe.render(lambda name: _parse_column(contract, name))


def _used_columns(contract: Contract) -> list[str]:
    """Source columns the windows need: join keys, then feature columns, in first-use order."""
    used = list(contract.entity.join_keys)
    for feature in contract.features:
        if feature.column is not None and feature.column not in used:
            used.append(feature.column)
    return used


def classified_view_ddl(contract: Contract, group: _SourceGroup) -> str:
    parsed = "".join(f"  {_parse_column(contract, name)} AS {quote_identifier(name)},\n"
                     for name in _used_columns(contract))
    return (
        f"CREATE TEMPORARY VIEW {_table(contract.table_name, 'classified')} AS\n"
        f"SELECT\n{parsed}"
        f"  {ROWTIME},\n"
        f"  {LINE},\n"
        f"  {SOURCE_FILE},\n"
        f"  {error_reason_expression(contract, group.max_lateness)} AS {ERROR_REASON}\n"
        f"FROM {_table(group.name, 'source')}"
    )


def good_view_ddl(contract: Contract) -> str:
    columns = "".join(f"{quote_identifier(name)}, " for name in _used_columns(contract))
    return (
        f"CREATE TEMPORARY VIEW {_table(contract.table_name, 'good')} AS\n"
        f"SELECT {columns}{ROWTIME}\n"
        f"FROM {_table(contract.table_name, 'classified')}\n"
        f"WHERE {ERROR_REASON} IS NULL"
    )


# ------------------------------------------------------------------------------------------------------------ sinks


#: The dead-letter sink runs as ONE task in its own vertex. Chained to the source (same parallelism), its file writer
#: (which keeps its part counter in union list state) sat in the source's vertex; with p=2 and one input file the
#: source task without a split finishes at once, and Flink then declined every checkpoint ("has used UnionListState,
#: but part of its tasks has called operators' finish method"): no finished part file until the job ended, so
#: nothing could be committed while the job ran. A single task behind a rebalance finishes only when every source does.
DEAD_LETTER_SINK_PARALLELISM = 1


def _sink_ddl(name: str, columns: Iterable[tuple[str, str]], path: str, *, parallelism: int | None = None) -> str:
    body = ",\n".join(f"  {quote_identifier(column)} {sql_type}" for column, sql_type in columns)
    parallel = f"  'sink.parallelism' = '{parallelism}',\n" if parallelism is not None else ""
    return (
        f"CREATE TEMPORARY TABLE {name} (\n{body}\n) WITH (\n"
        f"  'connector' = 'filesystem',\n"
        f"  'path' = {quote_literal(path)},\n"
        f"  'format' = 'csv',\n{parallel}"
        f"  'csv.null-literal' = {quote_literal(CSV_NULL_LITERAL)}\n"
        f")"
    )


def feature_sink_columns(contract: Contract) -> list[tuple[str, str]]:
    """The window rows as written by Flink: the Delta layout without ``ingested_at`` (added at commit time), then
    :data:`HIDDEN_FEATURE_COLUMNS` (dropped at commit time)."""
    columns = contract.source.columns
    keys = [(key, FLINK_TYPES[columns[key].type]) for key in contract.entity.join_keys]
    windows = [(WINDOW_START, "TIMESTAMP(3)"), (WINDOW_END, "TIMESTAMP(3)")]
    features = [(f.name, FLINK_TYPES[f.type]) for f in contract.features]
    return [*keys, *windows, *features, *HIDDEN_FEATURE_COLUMNS]


# ---------------------------------------------------------------------------------------------------------- windows


def window_tvf(source_view: str, step: timedelta, size: timedelta) -> str:
    if size == step:
        return f"TABLE(TUMBLE(TABLE {source_view}, DESCRIPTOR({ROWTIME}), {interval(step)}))"
    return f"TABLE(HOP(TABLE {source_view}, DESCRIPTOR({ROWTIME}), {interval(step)}, {interval(size)}))"


def feature_expression(feature: Feature, contract: Contract) -> str:
    """The aggregate for one feature, filtered to its own window size, cast to its declared type."""
    column = quote_identifier(feature.column) if feature.column is not None else None
    match feature.aggregation:
        case "count":
            aggregate = f"COUNT({column or '*'})"
        case "sum" | "min" | "max":
            aggregate = f"{feature.aggregation.upper()}({column})"
        case "avg":
            aggregate = f"AVG(CAST({column} AS DOUBLE))"
        case "count_distinct":
            aggregate = f"COUNT(DISTINCT {column})"
        case "last":
            aggregate = f"MAX(CONCAT(CAST({ROWTIME} AS STRING), CAST({column} AS STRING)))"
        case other:  # pragma: no cover - the model's Literal forbids it
            raise ValueError(f"unknown aggregation {other!r}")
    if feature.window.size < contract.max_window:
        in_window = f" FILTER (WHERE {ROWTIME} >= {WINDOW_END} - {interval(feature.window.size)})"
        aggregate += in_window
        if feature.aggregation == "sum":  # no event in the window: 0; events whose column is all null: NULL
            aggregate = f"CASE WHEN COUNT(*){in_window} = 0 THEN 0 ELSE {aggregate} END"
    if feature.aggregation == "last":
        aggregate = f"SUBSTR({aggregate}, {_TIMESTAMP_TEXT_WIDTH + 1})"
    return f"CAST({aggregate} AS {FLINK_TYPES[feature.type]})"


def accepted_in_step_expression(contract: Contract) -> str:
    """Good events in the row's last step: the whole window when it is a tumbling one."""
    if contract.step == contract.max_window:
        return "COUNT(*)"
    return f"COUNT(*) FILTER (WHERE {ROWTIME} >= {WINDOW_END} - {interval(contract.step)})"


def feature_insert(contract: Contract) -> str:
    keys = ", ".join(quote_identifier(k) for k in contract.entity.join_keys)
    features = "".join(f",\n  {feature_expression(f, contract)} AS {quote_identifier(f.name)}"
                       for f in contract.features)
    features += f",\n  {accepted_in_step_expression(contract)} AS {ACCEPTED_IN_STEP}"
    tvf = window_tvf(_table(contract.table_name, "good"), contract.step, contract.max_window)
    return (
        f"INSERT INTO {_table(contract.table_name, 'features')}\n"
        f"SELECT\n  {keys},\n  {WINDOW_START},\n  {WINDOW_END}{features}\n"
        f"FROM {tvf}\n"
        f"GROUP BY {keys}, {WINDOW_START}, {WINDOW_END}"
    )


def dead_letter_insert(contract: Contract) -> str:
    return (
        f"INSERT INTO {_table(contract.table_name, 'dead_letters')}\n"
        f"SELECT {ERROR_REASON}, {quote_literal(contract.source.name)}, {SOURCE_FILE}, "
        f"CAST(CURRENT_TIMESTAMP AS TIMESTAMP(3)), SUBSTR({LINE}, 1, {DEAD_LETTER_LINE_CHARS})\n"
        f"FROM {_table(contract.table_name, 'classified')}\n"
        f"WHERE {ERROR_REASON} IS NOT NULL"
    )


# -------------------------------------------------------------------------------------------------------------- job


def build_job_sql(contracts: Sequence[Contract], source_paths: Mapping[str, SourceLocation | str],
                  outputs: Mapping[str, OutputPaths], *, line_format: LineFormat = "fp-lines",
                  max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> JobSql:
    """The SQL of one job running every contract: shared source tables, per-contract views, sinks and INSERTs.

    ``source_paths`` maps a source name to where its JSON lines come from: a
    :data:`~pipelines.sources.location.SourceLocation` (files or a Kafka topic), or a bare string meaning a bounded
    file source; ``outputs`` maps a contract's ``table_name`` to its output folders. Paths are used as given (pass
    ``file://`` URIs for local folders). ``line_format`` says how file sources read lines (the job then needs the
    ``fp-lines`` jar: :func:`pipelines.jvm.line_format.line_reader`); ``max_line_bytes`` bounds a usable line.
    """
    if not contracts:
        raise ValueError("no contracts to run")
    tables = [c.table_name for c in contracts]
    if len(set(tables)) != len(tables):
        raise ValueError(f"two contracts map to the same table: {sorted(tables)}")
    ddl: list[str] = []
    inserts: list[str] = []
    single_readers: list[str] = []
    for group in _group_by_source(contracts):
        if group.name not in source_paths:
            raise ValueError(f"no events path for source `{group.name}`")
        if isinstance(source_paths[group.name], KafkaSource) and KAFKA_READER_PARALLELISM == 1:
            single_readers.append(f"{group.name}__source")
        ddl.append(source_table_ddl(group, source_paths[group.name], line_format=line_format,
                                       max_line_bytes=max_line_bytes))
        for contract in group.contracts:
            table = contract.table_name
            if table not in outputs:
                raise ValueError(f"no output paths for table `{table}`")
            paths = outputs[table]
            ddl.append(classified_view_ddl(contract, group))
            ddl.append(good_view_ddl(contract))
            ddl.append(_sink_ddl(_table(table, "features"), feature_sink_columns(contract), paths.features))
            ddl.append(_sink_ddl(_table(table, "dead_letters"), DEAD_LETTER_COLUMNS, paths.dead_letters,
                                  parallelism=DEAD_LETTER_SINK_PARALLELISM))
            inserts += [feature_insert(contract), dead_letter_insert(contract)]
    return JobSql(tuple(ddl), tuple(inserts), tuple(single_readers))
