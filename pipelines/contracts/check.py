"""Semantic checks: rules that relate one part of a contract to another, one small function per rule.

The loader (:mod:`pipelines.contracts.load`) already guarantees the *shape* of a contract: known keys, value types,
name patterns, durations. The rules here catch contracts that are well-formed but cannot work: a feature over a column
that does not exist, a ``sum`` over text, two features that emit at different steps, a fallback of the wrong type.

Every rule takes a :class:`LoadedContract` and yields :class:`Finding` objects located with
``loaded.finding(path, ...)``, so each one carries file, line, column and YAML path, and its message says what is
expected instead.
:func:`check_contracts` runs them over files and folders and adds the rules that compare contracts with each other.
Nothing here imports pyflink, feast, pandas or pyarrow: ``feature-check`` must stay fast.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from datetime import timedelta
from pathlib import Path

from pipelines.contracts.durations import format_duration
from pipelines.contracts.load import KEY, ContractLoadError, LoadedContract, iter_contract_files, load_contract
from pipelines.contracts.model import Contract, Window
from pipelines.contracts.types import (
    AGGREGATION_INPUT_TYPES,
    JOIN_KEY_TYPES,
    aggregation_accepts,
    fallback_value_matches,
    feature_output_type,
)
from pipelines.layout import RESERVED_COLUMNS
from pipelines.report import ContractReport, Finding

Rule = Callable[[LoadedContract], Iterator[Finding]]

#: Every rule id this module reports, with what it means (docs/contracts.md explains each one).
RULES: dict[str, str] = {
    "duplicate-feature": "two features share a name",
    "duplicate-join-key": "a join key is listed twice",
    "name-clash": "a feature or join key is named like a column the table already has",
    "window-size": "a window size is zero",
    "window-slide": "a slide is zero, longer than its window, or does not divide the window size",
    "lateness": "allowed_lateness is not shorter than the largest window (warning)",
    "one-step": "the features of one contract do not all emit at the same step",
    "unknown-column": "a join key, the event-time column or a feature's column is not in the source schema",
    "event-time-type": "the event-time column is not a timestamp",
    "key-type": "a join key is not string, int32 or int64",
    "missing-column": "an aggregation other than count has no column",
    "aggregation-type": "the aggregation cannot run over the column's type",
    "feature-type": "the declared feature type is not what the aggregation produces",
    "unknown-feature": "degradation or sla.features names a feature the contract does not have",
    "fallback-type": "a `fallback: default` value does not match the feature type",
    "ttl-step": "serving.ttl is shorter than the step (warning)",
    "freshness": "an SLA freshness is zero",
    "duplicate-contract": "two files declare the same contract name",
    "duplicate-table": "two files would write the same Delta table and Feast feature view",
    "source-conflict": "contracts reading the same source disagree on its event-time column or format, or a "
                       "column's type",
    "filter-syntax": "source.filter is not a valid expression, or is too long or too deeply nested",
    "filter-unsafe": "source.filter uses something outside the safe subset (a subquery, an unknown function, ...)",
    "filter-column": "source.filter reads a column that is not in the source schema",
    "filter-type": "source.filter is not a condition, or compares values of different kinds",
}

_ONE_ROW_PER_STEP = ("a contract writes ONE row per entity per step, every feature valued as of the step's end, so its "
                     "Delta table and Feast feature view have one timestamp")


# --- names -------------------------------------------------------------------------------------------------------


def check_unique_feature_names(loaded: LoadedContract) -> Iterator[Finding]:
    """Feature names become Delta columns and Feast fields: each must be unique within the contract."""
    first: dict[str, int] = {}
    for i, feature in enumerate(loaded.contract.features):
        if feature.name in first:
            yield loaded.finding(("features", i, "name"), "duplicate-feature",
                                 f"feature `{feature.name}` is already defined at features[{first[feature.name]}]; "
                                 f"feature names must be unique within a contract")
        else:
            first[feature.name] = i


def check_unique_join_keys(loaded: LoadedContract) -> Iterator[Finding]:
    """A key listed twice would give the table two columns of the same name."""
    seen: set[str] = set()
    for i, key in enumerate(loaded.contract.entity.join_keys):
        if key in seen:
            yield loaded.finding(("entity", "join_keys", i), "duplicate-join-key",
                                 f"join key `{key}` is listed twice; list each key once")
        seen.add(key)


def check_name_clashes(loaded: LoadedContract) -> Iterator[Finding]:
    """Features share one table with the join keys and the platform's columns, so their names must not collide."""
    contract = loaded.contract
    reserved = ", ".join(f"`{name}`" for name in sorted(RESERVED_COLUMNS))
    for i, key in enumerate(contract.entity.join_keys):
        if key in RESERVED_COLUMNS:
            yield loaded.finding(("entity", "join_keys", i), "name-clash",
                                 f"join key `{key}` is a column the platform adds to every feature table ({reserved}); "
                                 f"rename the source column")
    for i, feature in enumerate(contract.features):
        if feature.name in contract.entity.join_keys:
            why = "a join key"
        elif feature.name == contract.source.event_time:
            why = "the event-time column"
        elif feature.name in RESERVED_COLUMNS:
            why = f"a column the platform adds to every feature table ({reserved})"
        else:
            continue
        yield loaded.finding(("features", i, "name"), "name-clash",
                             f"feature name `{feature.name}` is {why}; choose another name")


# --- windows -----------------------------------------------------------------------------------------------------


def _window_is_sane(window: Window) -> bool:
    size, slide = window.size, window.slide
    if size <= timedelta(0):
        return False
    return slide is None or (timedelta(0) < slide <= size and size % slide == timedelta(0))


def check_windows(loaded: LoadedContract) -> Iterator[Finding]:
    """A window must have a length, and a sliding window must tile it: ``size`` a whole multiple of ``slide``."""
    for i, feature in enumerate(loaded.contract.features):
        size, slide = feature.window.size, feature.window.slide
        where = ("features", i, "window")
        if size <= timedelta(0):
            yield loaded.finding((*where, "size"), "window-size",
                                 "the window size must be longer than 0 (for example `5m`)")
            continue
        if slide is None:
            continue
        shown = format_duration(size)
        if slide <= timedelta(0):
            message = f"the slide must be longer than 0; for a tumbling window write `window: {shown}`"
        elif slide > size:
            message = (f"the slide ({format_duration(slide)}) is longer than the window ({shown}), so events between "
                       f"windows would be ignored; use a slide of at most {shown}")
        elif size % slide:
            hint = format_duration(_largest_divisor_step(size, slide))
            message = (f"the window size ({shown}) must be a whole multiple of the slide ({format_duration(slide)}); "
                       f"for example `window: {{size: {shown}, slide: {hint}}}`")
        else:
            continue
        yield loaded.finding((*where, "slide"), "window-slide", message)


def _largest_divisor_step(size: timedelta, slide: timedelta) -> timedelta:
    """The largest duration up to ``slide`` that divides ``size``, in whole units of the slide's spelling."""
    unit = timedelta(milliseconds=1)
    for candidate in (timedelta(days=1), timedelta(hours=1), timedelta(minutes=1), timedelta(seconds=1)):
        if slide % candidate == timedelta(0) and size % candidate == timedelta(0):
            unit = candidate
            break
    steps = slide // unit
    while steps > 1 and size % (unit * steps):
        steps -= 1
    return unit * steps


def check_lateness(loaded: LoadedContract) -> Iterator[Finding]:
    """Lateness as long as a window means most windows wait a whole window length before they are final."""
    contract = loaded.contract
    lateness, largest = contract.source.allowed_lateness, contract.max_window
    if largest > timedelta(0) and lateness >= largest:
        yield loaded.finding(("source", "allowed_lateness"), "lateness",
                             f"allowed_lateness ({format_duration(lateness)}) should be shorter than the largest "
                             f"window ({format_duration(largest)}): every window waits that long before it is emitted",
                             severity="warning")


def contract_step(contract: Contract) -> timedelta | None:
    """The step most features emit at (ties: the earliest feature's); ``None`` when no window is sane.

    Equal to :attr:`Contract.step` for every contract that passes the ``one-step`` rule.
    """
    steps = [f.window.step for f in contract.features if _window_is_sane(f.window)]
    if not steps:
        return None
    counts = Counter(steps)
    best = max(counts.values())
    return next(step for step in steps if counts[step] == best)


def check_one_step(loaded: LoadedContract) -> Iterator[Finding]:
    """Every feature emits at the contract's one step, and every window is a whole number of steps long.

    Why: a contract writes one row per entity per step with every feature valued as of the step's end, so its Delta
    table and its Feast feature view have a single timestamp column.
    """
    contract = loaded.contract
    step = contract_step(contract)
    if step is None:
        return
    sane = [f for f in contract.features if _window_is_sane(f.window)]
    agreeing = sum(1 for f in sane if f.window.step == step)
    shown = format_duration(step)
    for i, feature in enumerate(contract.features):
        window = feature.window
        if not _window_is_sane(window) or window.step == step:
            continue
        size = window.size if window.size % step == timedelta(0) else (window.size // step + 1) * step
        fix = f"window: {shown}" if size == step else f"window: {{size: {format_duration(size)}, slide: {shown}}}"
        yield loaded.finding(("features", i, "window"), "one-step",
                             f"this feature emits every {format_duration(window.step)} but the contract's step is "
                             f"{shown} ({agreeing} of {len(sane)} features emit every {shown}); every feature of a "
                             f"contract must emit at the same step because {_ONE_ROW_PER_STEP}. Use `{fix}`, or move "
                             f"the feature to another contract")


# --- columns -----------------------------------------------------------------------------------------------------


def _known_columns(contract: Contract) -> str:
    return ", ".join(f"`{name}`" for name in contract.source.columns)


def check_key_columns(loaded: LoadedContract) -> Iterator[Finding]:
    """Join keys and the event time are read from every event: they must be declared with usable types."""
    contract = loaded.contract
    columns = contract.source.columns
    for i, key in enumerate(contract.entity.join_keys):
        if key not in columns:
            yield loaded.finding(("entity", "join_keys", i), "unknown-column",
                                 f"join key `{key}` is not in source.schema; declare it there or use one of "
                                 f"{_known_columns(contract)}")
        elif columns[key].type not in JOIN_KEY_TYPES:
            yield loaded.finding(("source", "schema", key, "type"), "key-type",
                                 f"join key `{key}` has type {columns[key].type}; join keys must be string, int32 or "
                                 f"int64 so they compare exactly in Flink, Delta and Feast")
    event_time = contract.source.event_time
    if event_time not in columns:
        yield loaded.finding(("source", "event_time"), "unknown-column",
                             f"event-time column `{event_time}` is not in source.schema; declare it there as "
                             f"`{event_time}: timestamp`")
    elif columns[event_time].type != "timestamp":
        yield loaded.finding(("source", "schema", event_time, "type"), "event-time-type",
                             f"the event-time column `{event_time}` has type {columns[event_time].type}; it must be "
                             f"`timestamp` (ISO-8601 text, UTC)")


def check_feature_columns(loaded: LoadedContract) -> Iterator[Finding]:
    """A feature's column must exist; every aggregation but ``count`` needs one."""
    contract = loaded.contract
    for i, feature in enumerate(contract.features):
        if feature.column is None:
            if feature.aggregation != "count":
                yield loaded.finding(("features", i, "aggregation"), "missing-column",
                                     f"`{feature.aggregation}` needs `column:` naming the source column to aggregate; "
                                     f"only `count` works without one")
        elif feature.column not in contract.source.columns:
            yield loaded.finding(("features", i, "column"), "unknown-column",
                                 f"column `{feature.column}` is not in source.schema; use one of "
                                 f"{_known_columns(contract)}")


def check_aggregation_types(loaded: LoadedContract) -> Iterator[Finding]:
    """``sum`` over text or ``max`` over booleans cannot be computed: the aggregation must fit the column type."""
    columns = loaded.contract.source.columns
    for i, feature in enumerate(loaded.contract.features):
        if feature.column is None or feature.column not in columns:
            continue  # reported by check_feature_columns
        column_type = columns[feature.column].type
        if not aggregation_accepts(feature.aggregation, column_type):
            accepted = ", ".join(sorted(AGGREGATION_INPUT_TYPES[feature.aggregation]))
            yield loaded.finding(("features", i, "aggregation"), "aggregation-type",
                                 f"`{feature.aggregation}` cannot run over `{feature.column}` ({column_type}); it "
                                 f"accepts columns of type {accepted}")


def check_feature_types(loaded: LoadedContract) -> Iterator[Finding]:
    """The declared type is what consumers rely on, so it must be exactly what the aggregation produces."""
    columns = loaded.contract.source.columns
    for i, feature in enumerate(loaded.contract.features):
        if feature.column is not None and feature.column not in columns:
            continue
        column_type = columns[feature.column].type if feature.column is not None else None
        if not aggregation_accepts(feature.aggregation, column_type):
            continue  # reported by check_feature_columns or check_aggregation_types
        produced = feature_output_type(feature.aggregation, column_type)
        if feature.type != produced:
            over = f" over `{feature.column}` ({column_type})" if column_type else ""
            yield loaded.finding(("features", i, "type"), "feature-type",
                                 f"`{feature.aggregation}`{over} produces {produced}, but the feature declares "
                                 f"{feature.type}; declare `type: {produced}`")


# --- serving, SLA, degradation -----------------------------------------------------------------------------------


def check_feature_references(loaded: LoadedContract) -> Iterator[Finding]:
    """``degradation`` and ``sla.features`` are keyed by feature name; a typo there would silently do nothing."""
    contract = loaded.contract
    names = [f.name for f in contract.features]
    known = ", ".join(f"`{name}`" for name in names)
    for section, keys in (("degradation", contract.degradation), ("sla.features", contract.sla.features)):
        for name in keys:
            if name not in names:
                path = (*section.split("."), name, KEY)
                yield loaded.finding(path, "unknown-feature",
                                     f"`{name}` is not a feature of this contract; {section} keys must be one of "
                                     f"{known}")


def check_fallback_values(loaded: LoadedContract) -> Iterator[Finding]:
    """Serving returns the default in place of the feature, so it must have the feature's type."""
    types = {f.name: f.type for f in loaded.contract.features}
    expected = {"int64": "a whole number such as `0`", "double": "a number such as `0.0`",
                "string": "quoted text such as `\"unknown\"`", "boolean": "`true` or `false`"}
    for name, fallback in loaded.contract.degradation.items():
        if fallback.fallback != "default" or name not in types:
            continue
        if not fallback_value_matches(types[name], fallback.value):
            yield loaded.finding(("degradation", name, "value"), "fallback-type",
                                 f"the default {fallback.value!r} ({type(fallback.value).__name__}) does not match "
                                 f"feature `{name}` of type {types[name]}; use {expected[types[name]]}")


def check_ttl(loaded: LoadedContract) -> Iterator[Finding]:
    """A value is replaced once per step; a shorter TTL makes it expire before its successor arrives."""
    step = contract_step(loaded.contract)
    ttl = loaded.contract.serving.ttl
    if step is not None and ttl < step:
        yield loaded.finding(("serving", "ttl"), "ttl-step",
                             f"serving.ttl ({format_duration(ttl)}) is shorter than the step "
                             f"({format_duration(step)}): values expire before the next one is computed; use at "
                             f"least {format_duration(step)}",
                             severity="warning")


def check_freshness(loaded: LoadedContract) -> Iterator[Finding]:
    """A freshness of 0 can never be met: no value is ever that fresh."""
    sla = loaded.contract.sla
    if sla.freshness <= timedelta(0):
        yield loaded.finding(("sla", "freshness"), "freshness",
                             "sla.freshness must be longer than 0 (how old a served value may be, e.g. `2m`)")
    for name, override in sla.features.items():
        if override.freshness is not None and override.freshness <= timedelta(0):
            yield loaded.finding(("sla", "features", name, "freshness"), "freshness",
                                 f"the freshness of `{name}` must be longer than 0 (e.g. `2m`)")


def check_source_filter(loaded: LoadedContract) -> Iterator[Finding]:
    """A filter is untrusted SQL: only the safe subset over declared columns (:mod:`pipelines.contracts.expressions`).

    Located at the offending part of the expression: exact for a single-line plain (unquoted) YAML value.
    """
    text = loaded.contract.source.filter
    if text is None:
        return
    from pipelines.contracts.expressions import ExpressionError, parse_filter  # sqlglot: only when a filter exists

    columns = {name: column.type for name, column in loaded.contract.source.columns.items()}
    try:
        parse_filter(text, columns)
    except ExpressionError as exc:
        pos = loaded.locate(("source", "filter"))
        line = pos.line + exc.line - 1
        column = pos.column + exc.column - 1 if exc.line == 1 else exc.column
        yield Finding(loaded.file, line, column, "source.filter", exc.rule, exc.message)
    except RecursionError:
        pos = loaded.locate(("source", "filter"))
        yield Finding(loaded.file, pos.line, pos.column, "source.filter", "filter-syntax",
                      "the expression is nested too deeply")


CONTRACT_RULES: tuple[Rule, ...] = (
    check_unique_feature_names,
    check_unique_join_keys,
    check_name_clashes,
    check_windows,
    check_lateness,
    check_one_step,
    check_key_columns,
    check_feature_columns,
    check_aggregation_types,
    check_feature_types,
    check_feature_references,
    check_fallback_values,
    check_ttl,
    check_freshness,
    check_source_filter,
)


def check_loaded(loaded: LoadedContract) -> list[Finding]:
    """Run every single-contract rule; findings sorted by position."""
    return sorted(finding for rule in CONTRACT_RULES for finding in rule(loaded))


# --- across contracts --------------------------------------------------------------------------------------------


def check_across_contracts(contracts: Iterable[LoadedContract]) -> dict[str, list[Finding]]:
    """Rules over the whole set: one file per table name, one file per contract name. Keyed by file."""
    by_table: dict[str, list[LoadedContract]] = {}
    by_name: dict[str, list[LoadedContract]] = {}
    for loaded in contracts:
        by_table.setdefault(loaded.contract.table_name, []).append(loaded)
        by_name.setdefault(loaded.contract.name, []).append(loaded)
    findings: dict[str, list[Finding]] = {}
    flagged: set[str] = set()
    for table, group in by_table.items():
        for loaded, others in _with_others(group):
            flagged.add(loaded.file)
            findings.setdefault(loaded.file, []).append(loaded.finding(
                ("name",), "duplicate-table",
                f"table `{table}` (name + major version) is also produced by {others}: both would write the same Delta "
                f"table and Feast feature view; rename one contract or give it another major version"))
    for name, group in by_name.items():
        for loaded, others in _with_others(group):
            if loaded.file not in flagged:
                findings.setdefault(loaded.file, []).append(loaded.finding(
                    ("name",), "duplicate-contract",
                    f"contract `{name}` is also declared in {others}; a contract lives in one file (its older versions "
                    f"live in git history), so rename one of them"))
    return findings


#: Source keys every contract reading one source must agree on: (key, what it is, why they must agree).
_SHARED_SOURCE_KEYS = (
    ("event_time", "event-time column",
     "contracts reading one source share one source table and watermark, so they must use the same column"),
    ("event_time_format", "event-time format",
     "contracts reading one source share one rowtime, so they must read the time the same way"),
)


def check_shared_sources(contracts: Iterable[LoadedContract]) -> dict[str, list[Finding]]:
    """Contracts that read the same source share one Flink source table: one event-time column, one type per column."""
    by_source: dict[str, list[LoadedContract]] = {}
    for loaded in contracts:
        by_source.setdefault(loaded.contract.source.name, []).append(loaded)
    findings: dict[str, list[Finding]] = {}
    for source, group in by_source.items():
        for loaded in group:
            own = loaded.contract.source
            others = [o for o in group if o is not loaded]
            for key, what, why in _SHARED_SOURCE_KEYS:
                mine = getattr(own, key)
                differing = [o for o in others if getattr(o.contract.source, key) != mine]
                if differing:
                    said = ", ".join(f"`{getattr(o.contract.source, key)}` in {o.file}" for o in differing)
                    findings.setdefault(loaded.file, []).append(loaded.finding(
                        ("source", key), "source-conflict",
                        f"source `{source}` is read with {what} `{mine}` here but {said}; {why}"))
            for column, spec in own.columns.items():
                said = ", ".join(f"{o.contract.source.columns[column].type} in {o.file}" for o in others
                                 if column in o.contract.source.columns
                                 and o.contract.source.columns[column].type != spec.type)
                if said:
                    findings.setdefault(loaded.file, []).append(loaded.finding(
                        ("source", "schema", column, "type"), "source-conflict",
                        f"column `{column}` of source `{source}` is {spec.type} here but {said}; contracts reading "
                        f"one source parse each column once, so they must declare the same type"))
    return findings


def _with_others(group: list[LoadedContract]) -> Iterator[tuple[LoadedContract, str]]:
    if len(group) < 2:
        return
    for loaded in group:
        yield loaded, ", ".join(other.file for other in group if other is not loaded)


# --- entry point -------------------------------------------------------------------------------------------------


def collect_contract_files(paths: Iterable[Path | str]) -> list[Path]:
    """Contract files under each path (a file or a folder), each once, in the order given.

    Raises ``FileNotFoundError`` for a path that does not exist: checking nothing must not look like success.
    """
    files: list[Path] = []
    seen: set[Path] = set()
    for root in map(Path, paths):
        if not root.exists():
            raise FileNotFoundError(f"no such file or folder: {root}")
        for file in iter_contract_files(root):
            if file.resolve() not in seen:
                seen.add(file.resolve())
                files.append(file)
    return files


def check_contracts(paths: Iterable[Path | str]) -> list[ContractReport]:
    """Load and check every contract file under ``paths``; one report per file, in file order."""
    return check_contracts_loaded(paths)[0]


def check_contracts_loaded(paths: Iterable[Path | str]) -> tuple[list[ContractReport], list[LoadedContract]]:
    """:func:`check_contracts`, also returning the contracts that loaded (breaking-change and data checks use them)."""
    reports: list[ContractReport] = []
    loaded_contracts: list[LoadedContract] = []
    for file in collect_contract_files(paths):
        try:
            loaded = load_contract(file)
        except ContractLoadError as exc:
            reports.append(ContractReport(str(file), findings=list(exc.findings)))
            continue
        loaded_contracts.append(loaded)
        reports.append(ContractReport(loaded.file, loaded.contract.name, loaded.contract.version,
                                      check_loaded(loaded)))
    across = check_across_contracts(loaded_contracts)
    shared = check_shared_sources(loaded_contracts)
    for report in reports:
        report.findings = sorted([*report.findings, *across.get(report.file, []), *shared.get(report.file, [])])
    return reports, loaded_contracts
