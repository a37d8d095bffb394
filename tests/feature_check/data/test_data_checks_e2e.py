"""Data checks on Delta tables written by the real pipeline: generated events → Flink job → Delta commits.

One Flink run per module (module-scoped fixture) feeds every assertion. The structural expectations must hold for
the pipeline's output (types, keys, one row per entity and window, value ranges), the null-rate findings must agree
with an independent pandas computation, and a second Delta version written by deltalake with one feature scaled
must show up as a distribution shift of exactly that feature.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from deltalake import DeltaTable, write_deltalake

from pipelines.config import PROJECT_ROOT, DataCheckThresholds, Settings
from pipelines.contracts.load import LoadedContract, iter_contract_files, load_contract
from pipelines.feature_check.data import run_data_checks
from pipelines.feature_check.data.suite import null_rate_limit
from pipelines.jobs.compute import RunSummary, run_contracts
from pipelines.sources.generator import GeneratedEvents, SourceSpec, safe_jitter, write_events

pytestmark = pytest.mark.e2e

STRUCTURAL = {"data-schema", "data-null-key", "data-unique-window", "data-value-range", "data-window-shape",
              "data-gx-error"}


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, list[LoadedContract], RunSummary,
                                                                  GeneratedEvents]:
    root = tmp_path_factory.mktemp("quality_e2e")
    loaded = [load_contract(path) for path in iter_contract_files(PROJECT_ROOT / "contracts")]
    by_source = defaultdict(list)
    for item in loaded:
        by_source[item.contract.source.name].append(item.contract)
    events, last = {}, None
    for source, members in by_source.items():
        generated = write_events(SourceSpec.from_contracts(members), root / "events" / source, 6000, seed=11,
                                 duration=timedelta(hours=3), max_jitter=safe_jitter(members), entities=200)
        events[source] = root / "events" / source
        last = generated
    settings = Settings(data_dir=root / "data", parallelism=2)
    summary = run_contracts([item.contract for item in loaded], events, settings)
    assert summary.balanced
    assert last is not None
    return settings, loaded, summary, last


def test_the_pipeline_output_meets_every_structural_expectation(pipeline) -> None:
    settings, loaded, _summary, generated = pipeline
    reports = run_data_checks(loaded, settings, now=generated.last_event + timedelta(minutes=30))

    assert len(reports) == len(loaded)
    for report in reports:
        structural = [f.render() for f in report.findings if f.rule in STRUCTURAL]
        assert structural == [], structural
        [estimate] = [f for f in report.findings if f.rule == "state-estimate"]
        assert "active keys (delta)" in estimate.message


def test_null_rate_findings_agree_with_pandas(pipeline) -> None:
    settings, loaded, _summary, generated = pipeline
    reports = run_data_checks(loaded, settings, now=generated.last_event + timedelta(minutes=30))

    for item, report in zip(loaded, reports, strict=True):
        contract = item.contract
        frame = DeltaTable(str(settings.delta_table_path(contract.table_name))).to_pandas()
        expected = set()
        for feature in contract.features:
            # the rows whose feature window held an event: all rows for the largest window (that is why a row
            # exists); for a smaller one, the rows where the contract's COUNT(*) over that window is > 0
            rows = frame
            if feature.window.size < contract.max_window and feature.aggregation in ("avg", "min", "max", "last"):
                count = next(f.name for f in contract.features if f.aggregation == "count" and f.column is None
                             and f.window.size == feature.window.size)
                rows = frame[frame[count] > 0]
            if rows[feature.name].isna().mean() > null_rate_limit(contract, feature.name)[0]:
                expected.add(feature.name)
        found = {f.message.split("`")[1] for f in report.findings if f.rule == "data-null-rate"}
        assert found == expected, (contract.name, found, expected)
    # A sum over a smaller window with no event is 0, not NULL (an empty window is not missing data).
    users = next(i.contract for i in loaded if i.contract.name == "user_txn_stats")
    frame = DeltaTable(str(settings.delta_table_path(users.table_name))).to_pandas()
    empty = frame[frame["txn_count_5m"] == 0]
    assert len(empty) > 0 and (empty["amount_sum_5m"] == 0).all()
    assert frame["amount_sum_5m"].notna().all()  # `amount` is required: never all null


def test_freshness_and_a_controlled_shift_in_a_second_version(pipeline) -> None:
    settings, loaded, _summary, generated = pipeline
    item = next(i for i in loaded if i.contract.name == "merchant_risk_profile")
    path = settings.delta_table_path(item.contract.table_name)
    table = DeltaTable(str(path))
    rows = table.to_pyarrow_table()
    span = timedelta(days=1)
    later = rows.set_column(rows.schema.get_field_index("window_end"), "window_end",
                            pc.add(rows["window_end"], span))
    later = later.set_column(later.schema.get_field_index("window_start"), "window_start",
                             pc.add(later["window_start"], span))
    index = later.schema.get_field_index("amount_sum_1h")
    later = later.set_column(index, "amount_sum_1h", pc.multiply(later["amount_sum_1h"], 5.0))
    stamp = pa.array([pc.max(rows["ingested_at"]).as_py() + span] * rows.num_rows, rows["ingested_at"].type)
    later = later.set_column(later.schema.get_field_index("ingested_at"), "ingested_at", stamp)
    write_deltalake(table, later, mode="append")
    assert rows.num_rows >= 50  # a merchant table of 3 hours is small: test with a lower minimum than the default
    small = Settings(data_dir=settings.data_dir, data_checks=DataCheckThresholds(shift_min_rows=50))

    [report] = run_data_checks([item], small, now=generated.last_event + span + timedelta(days=2))

    shifted = [f for f in report.findings if f.rule == "data-distribution-shift"]
    assert [f.yaml_path for f in shifted] == ["features[1]"], [f.render() for f in shifted]
    assert not [f for f in report.findings if f.rule == "data-row-count-shift"]  # doubling is within the default
    [stale] = [f for f in report.findings if f.rule == "data-freshness"]
    assert stale.line == item.locate(("sla", "freshness")).line and stale.severity == "warning"


def test_the_tables_exist_where_the_checks_look(pipeline) -> None:
    settings, loaded, summary, _generated = pipeline
    assert {t.table for t in summary.tables} == {i.contract.table_name for i in loaded}
    assert all(Path(settings.delta_table_path(t.table)).exists() and t.rows_written > 0 for t in summary.tables)
