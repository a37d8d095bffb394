"""Both parse paths, the same answers: a corpus of good and bad lines through the real job twice, once parsing each
line once (``parse_once=on``, the Java functions) and once with the plain SQL (``off``), streaming and batch; the
committed Delta rows and the dead letters (reason, contract, payload) must be identical.

The corpus is the generator's bad-line kinds plus the shapes where JSON parsers differ (numbers in strings and
exponents, booleans and objects where numbers belong, duplicate keys, trailing text, deep nesting, escapes)."""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
from deltalake import DeltaTable

from pipelines.config import PROJECT_ROOT, Settings
from pipelines.contracts.load import load_contract
from pipelines.contracts.model import Contract
from pipelines.delta import dead_letters
from pipelines.delta.write import read_csv_parts
from pipelines.jobs.backfill import run_backfill
from pipelines.jobs.compute import run_contracts
from pipelines.layout import finished_files
from pipelines.sources.generator import SourceSpec, safe_jitter, write_events

pytestmark = pytest.mark.e2e


def _odd_lines(template: dict) -> list[str]:
    deep = "[" * 1200 + "]" * 1200
    return [
        json.dumps({**template, "amount": "7.25"}), json.dumps({**template, "amount": "1e2"}),
        json.dumps({**template, "amount": 1e2}), json.dumps({**template, "amount": True}),
        json.dumps({**template, "amount": {"v": 1}}), json.dumps({**template, "amount": [1]}),
        json.dumps({**template, "user_id": None}), json.dumps({**template, "user_id": 12345678901234567890}),
        json.dumps({**template, "merchant_id": 7.0}), json.dumps({**template, "event_ts": 12}),
        json.dumps({**template, "event_ts": template["event_ts"].replace("Z", "")}),
        json.dumps(template)[:-1] + ',"amount":"dup"}', json.dumps(template) + " trailing",
        json.dumps(template)[:-1] + f',"deep":{deep}}}', json.dumps({**template, "country": "\u00e9\u0001"}),
        "[1, 2, 3]", '{"user_id": ', "null", "  ", json.dumps(template).replace('"', "'"),
    ]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Contract]]:
    contracts = [load_contract(PROJECT_ROOT / "contracts" / f"{name}.yaml").contract
                 for name in ("user_txn_stats", "merchant_risk_profile")]
    root = tmp_path_factory.mktemp("parse_paths")
    generated = write_events(SourceSpec.from_contracts(contracts), root / "events", 3_000, bad_lines=3, seed=11,
                             duration=timedelta(hours=2), max_jitter=safe_jitter(contracts), entities=50)
    (path,) = generated.files
    lines = path.read_text().split("\n")[:-1]
    lines += _odd_lines(json.loads(lines[-1]))  # at the end, so never late
    path.write_text("\n".join(lines) + "\n")
    return path.parent, contracts


def _committed(settings: Settings, contracts: list[Contract]) -> dict[str, pd.DataFrame]:
    tables = {}
    for contract in contracts:
        frame = DeltaTable(str(settings.delta_table_path(contract.table_name))).to_pandas()
        keys = [*contract.entity.join_keys, "window_end"]
        tables[contract.table_name] = frame.drop(columns=["ingested_at"]).sort_values(keys).reset_index(drop=True)
    return tables


def _dead_letters(settings: Settings, mode: str) -> Counter:
    """(reason, contract, payload) of every dead letter: committed to Delta (streaming), or the part files a backfill
    keeps in its run folder (batch)."""
    if mode == "streaming":
        frame = DeltaTable(str(settings.delta_table_path(dead_letters.table_name("transactions")))).to_pandas()
        return Counter(zip(frame["reason"], frame["contract"], frame["payload"].fillna(""), strict=True))
    found: Counter = Counter()
    for folder in settings.flink_dir.rglob("dead_letters"):  # <run>/<table>/dead_letters
        frame = read_csv_parts(finished_files(folder), dead_letters.PART_SCHEMA).to_pandas()
        found.update(zip(frame["reason"], [folder.parent.name] * len(frame), frame["line"].fillna(""), strict=True))
    return found


@pytest.mark.parametrize("mode", ["streaming", "batch"])
def test_parse_once_and_plain_sql_commit_the_same_rows_and_dead_letters(corpus, tmp_path: Path, mode: str) -> None:
    events, contracts = corpus
    results = {}
    for parse_once in ("off", "on"):
        settings = Settings(data_dir=tmp_path / parse_once, parallelism=2, parse_once=parse_once)
        if mode == "streaming":
            summary = run_contracts(contracts, {"transactions": events}, settings)
            assert summary.balanced
        else:
            run_backfill(contracts, {"transactions": events}, settings,
                         start=pd.Timestamp("2025-12-01", tz="UTC").to_pydatetime(),
                         end=pd.Timestamp("2026-02-01", tz="UTC").to_pydatetime())
        results[parse_once] = (_committed(settings, contracts), _dead_letters(settings, mode))
    (rows_off, dead_off), (rows_on, dead_on) = results["off"], results["on"]
    for table, frame in rows_off.items():
        assert len(frame) > 0
        pd.testing.assert_frame_equal(rows_on[table], frame, check_exact=False, rtol=1e-12)
    assert dead_on == dead_off
    reasons = Counter(reason for reason, _, _ in dead_off.elements())
    assert {"malformed_json", "bad_amount", "missing_user_id", "bad_event_time"} <= set(reasons)
