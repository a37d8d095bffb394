"""End to end: generated events → the real Flink job → Delta, compared row by row with an independent computation.

The reference below is written from the documented semantics (``pipelines/codegen/flink_sql.py`` module docstring),
not from the SQL: it classifies every line with Python's ``json`` module, tracks lateness with the maximum event time
seen so far, explodes each good event into the window ends whose largest window contains it, and aggregates each
feature over its own window size with pandas.

Exactness: key/window sets, counts, count-distincts and last values must be identical; sums, averages, minimums and
maximums are compared with a relative tolerance of 1e-9 (Flink adds DOUBLEs in another order than pandas, so the last
bits may differ). Every input line must be accounted for: accepted + dead letters == lines, each bad line under its
reason.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from deltalake import DeltaTable

from pipelines.config import PROJECT_ROOT, Settings
from pipelines.contracts.load import load_contract
from pipelines.contracts.model import Contract
from pipelines.delta.schema import table_properties
from pipelines.jobs.compute import RunSummary, run_contracts
from pipelines.sources.generator import SourceSpec, safe_jitter, write_events

pytestmark = pytest.mark.e2e

CONTRACT_NAMES = ("user_txn_stats", "merchant_risk_profile", "session_clickstream")
EVENTS_PER_SOURCE = 25_000
RELATIVE_TOLERANCE = 1e-9
NUMERIC = {"int32", "int64", "float", "double"}


# ------------------------------------------------------------------------------------------------- reference model


def _scalar(obj: dict, column: str) -> object:
    """What JSON_VALUE sees: None for absent, null, or non-scalar values."""
    value = obj.get(column)
    return None if isinstance(value, dict | list) else value


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _timestamp(value: object) -> datetime | None:
    try:
        return datetime.fromisoformat(_text(value).replace("T", " ").replace("Z", ""))
    except ValueError:
        return None


def _cast(value: object, column_type: str) -> object:
    """The parsed value, or raise ValueError when the documented cast fails."""
    if column_type == "string":
        return _text(value)
    if column_type in ("int32", "int64"):
        if isinstance(value, float | bool):
            raise ValueError(value)
        return int(_text(value))
    if column_type in ("float", "double"):
        if isinstance(value, bool):
            raise ValueError(value)
        return float(_text(value))
    if column_type == "timestamp":
        parsed = _timestamp(value)
        if parsed is None:
            raise ValueError(value)
        return parsed
    raise ValueError(column_type)


def classify(lines: list[str], contract: Contract) -> tuple[pd.DataFrame, Counter]:
    """The good events (parsed columns + event time ``_t``) and the dead letters by reason, for one contract."""
    source = contract.source
    required = [*contract.entity.join_keys, source.event_time]
    required += [n for n, c in source.columns.items() if c.required and n not in required]
    max_seen: datetime | None = None
    good: list[dict] = []
    reasons: Counter = Counter()
    for line in lines:
        reason, row, event_time = _classify_line(line, contract, required, max_seen)
        if event_time is not None:
            max_seen = event_time if max_seen is None else max(max_seen, event_time)
        if reason is None:
            good.append(row)
        else:
            reasons[reason] += 1
    return pd.DataFrame(good), reasons


def _classify_line(line: str, contract: Contract, required: list[str],
                   max_seen: datetime | None) -> tuple[str | None, dict, datetime | None]:
    source = contract.source
    try:
        obj = json.loads(line)
    except ValueError:
        return "malformed_json", {}, None
    if not isinstance(obj, dict):
        return "malformed_json", {}, None
    event_time = _timestamp(_scalar(obj, source.event_time)) if _scalar(obj, source.event_time) is not None else None
    for column in required:
        if _scalar(obj, column) is None:
            return f"missing_{column}", {}, event_time
        if column == source.event_time and event_time is None:
            return "bad_event_time", {}, None
    row: dict = {"_t": event_time}
    for name, spec in source.columns.items():
        value = _scalar(obj, name)
        if name == source.event_time:
            continue
        if value is None:
            row[name] = None
            continue
        try:
            row[name] = _cast(value, spec.type)
        except ValueError:
            return f"bad_{name}", {}, event_time
    if max_seen is not None and event_time <= max_seen - source.allowed_lateness:
        return "late_event", {}, event_time
    return None, row, event_time


def reference_rows(good: pd.DataFrame, contract: Contract) -> pd.DataFrame:
    """One row per key per window end, with every feature, computed from the semantics."""
    keys = list(contract.entity.join_keys)
    step, size = pd.Timedelta(contract.step), pd.Timedelta(contract.max_window)
    slides = int(size / step)
    assert slides * step == size, "the reference assumes the largest window is a multiple of the step"
    times = pd.to_datetime(good["_t"])
    first_end = times.dt.floor(step) + step
    exploded = good.loc[good.index.repeat(slides)].copy()
    exploded["_t"] = times.loc[exploded.index]
    exploded["window_end"] = first_end.loc[exploded.index] + step * np.tile(np.arange(slides), len(good))
    exploded = exploded[exploded["window_end"] - size <= exploded["_t"]]
    groups = exploded.groupby([*keys, "window_end"], sort=True)
    result = groups.size().rename("_n").to_frame()
    for feature in contract.features:
        in_window = exploded[exploded["_t"] >= exploded["window_end"] - pd.Timedelta(feature.window.size)]
        events = in_window.groupby([*keys, "window_end"], sort=True).size().reindex(result.index, fill_value=0)
        column = feature.column
        if column is not None:
            in_window = in_window[in_window[column].notna()]
        by = in_window.groupby([*keys, "window_end"], sort=True)
        match feature.aggregation:
            case "count":
                values = by.size().reindex(result.index, fill_value=0)
            case "sum":  # no event in the window: 0; events whose column is all null: NULL
                values = by[column].sum().reindex(result.index).where(events > 0, 0)
            case "avg":
                values = by[column].mean()
            case "min":
                values = by[column].min()
            case "max":
                values = by[column].max()
            case "count_distinct":
                values = by[column].nunique().reindex(result.index, fill_value=0)
            case "last":
                ordered = in_window.assign(_text=in_window[column].map(_text)).sort_values(["_t", "_text"])
                values = ordered.groupby([*keys, "window_end"], sort=True)["_text"].last()
        result[feature.name] = values.reindex(result.index)
    result = result.drop(columns="_n").reset_index()
    result.insert(len(keys), "window_start", result["window_end"] - size)
    return result


# ----------------------------------------------------------------------------------------------------------- inputs


def _extra_lines(spec: SourceSpec, last_line: str) -> list[str]:
    """Hand-made edge cases appended at the end (their event time is the last one: never late)."""
    template = json.loads(last_line)
    key = spec.join_keys[0]
    numeric = next(n for n, c in spec.columns.items() if c.type in NUMERIC)
    lines = ["[1, 2, 3]", "plain text", json.dumps({**template, key: None}),  # explicit null key
             json.dumps({k: v for k, v in template.items() if k != numeric}) if spec.columns[numeric].required
             else json.dumps({**template, numeric: None}),
             json.dumps({**template, numeric: str(template[numeric])}),  # a number as a string casts fine
             json.dumps({**template, spec.event_time: template[spec.event_time].replace("T", " ").replace("Z", "")})]
    for name, column in spec.columns.items():  # a required non-key column missing
        if column.required and name not in spec.join_keys and name != spec.event_time:
            lines.append(json.dumps({k: v for k, v in template.items() if k != name}))
    return lines


@dataclass(frozen=True)
class E2eRun:
    summary: RunSummary
    events: dict[str, Path]
    settings: Settings
    wall_seconds: float


@pytest.fixture(scope="module")
def contracts() -> list[Contract]:
    return [load_contract(PROJECT_ROOT / "contracts" / f"{name}.yaml").contract for name in CONTRACT_NAMES]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, contracts: list[Contract]) -> E2eRun:
    root = tmp_path_factory.mktemp("flink_e2e")
    events: dict[str, Path] = {}
    for source in sorted({c.source.name for c in contracts}):
        members = [c for c in contracts if c.source.name == source]
        spec = SourceSpec.from_contracts(members)
        generated = write_events(spec, root / "events" / source, EVENTS_PER_SOURCE, bad_lines=2, seed=7,
                                 duration=timedelta(hours=3), max_jitter=safe_jitter(members), entities=300)
        (path,) = generated.files
        lines = path.read_text().split("\n")[:-1]
        path.write_text("\n".join([*lines, *_extra_lines(spec, lines[-1])]) + "\n")
        events[source] = path.parent
    settings = Settings(data_dir=root / "data", parallelism=2)
    started = time.perf_counter()
    summary = run_contracts(contracts, events, settings)
    return E2eRun(summary, events, settings, time.perf_counter() - started)


# ------------------------------------------------------------------------------------------------------------ tests


def test_every_line_is_accounted_for_under_its_reason(run: E2eRun, contracts: list[Contract]) -> None:
    summary, events, wall = run.summary, run.events, run.wall_seconds
    print(f"\nFlink job + Delta commits: {wall:.1f}s wall (flink {summary.flink_seconds:.1f}s, "
          f"commit {summary.commit_seconds:.1f}s)")
    for contract in contracts:
        table_run = next(t for t in summary.tables if t.table == contract.table_name)
        lines = (events[contract.source.name] / f"{contract.source.name}-00000.jsonl").read_text().split("\n")[:-1]
        good, reasons = classify(lines, contract)
        assert table_run.input_lines == len(lines)
        assert dict(table_run.dead_letters) == dict(sorted(reasons.items())), contract.name
        assert table_run.events_accepted == len(good), contract.name
        assert table_run.balanced
        # every kind of defect really occurred
        assert {"malformed_json", "bad_event_time", "late_event", f"missing_{contract.source.event_time}"} <= set(
            reasons), reasons
        assert any(r.startswith("bad_") and r != "bad_event_time" for r in reasons), reasons


@pytest.mark.parametrize("name", CONTRACT_NAMES)
def test_delta_rows_equal_the_reference(run: E2eRun, contracts: list[Contract], name: str) -> None:
    events, settings = run.events, run.settings
    contract = next(c for c in contracts if c.name == name)
    lines = (events[contract.source.name] / f"{contract.source.name}-00000.jsonl").read_text().split("\n")[:-1]
    good, _ = classify(lines, contract)
    expected = reference_rows(good, contract)

    table = DeltaTable(str(settings.delta_table_path(contract.table_name)))
    config = table.metadata().configuration
    assert all(config.get(k) == v for k, v in table_properties(contract).items())
    actual = table.to_pandas()
    assert actual["ingested_at"].notna().all()
    keys = [*contract.entity.join_keys, "window_end"]
    for frame in (actual, expected):
        for column in ("window_start", "window_end"):
            frame[column] = pd.to_datetime(frame[column], utc=True).astype("datetime64[us, UTC]")
        frame.sort_values(keys, inplace=True, ignore_index=True)

    assert len(actual) == len(expected), f"{name}: {len(actual)} rows in Delta, {len(expected)} expected"
    mismatched = (actual[keys] != expected[keys]).any(axis=1)
    assert not mismatched.any(), f"{name}: key/window sets differ, first at\n{actual[mismatched].head()}"
    assert (actual["window_start"] == expected["window_start"]).all()
    for feature in contract.features:
        got, want = actual[feature.name], expected[feature.name]
        assert (got.isna() == want.isna()).all(), f"{name}.{feature.name}: NULLs differ"
        present = want.notna()
        if feature.aggregation == "last":
            assert (got[present].to_numpy() == want[present].to_numpy()).all(), f"{name}.{feature.name}"
        elif feature.aggregation in ("count", "count_distinct"):
            assert (got.astype("int64").to_numpy() == want.astype("int64").to_numpy()).all(), f"{name}.{feature.name}"
        else:
            np.testing.assert_allclose(got[present].astype(float), want[present].astype(float),
                                       rtol=RELATIVE_TOLERANCE, atol=0, err_msg=f"{name}.{feature.name}")
