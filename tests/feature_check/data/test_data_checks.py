"""Data checks on small real Delta tables written in the exact layout of pipelines/delta/schema.py (no Flink).

Each test builds a table with a known defect (or none) and asserts the rule that must fire, its severity and the
contract line it points at; the clean table asserts that nothing but the estimate is reported.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from conftest import CONTRACTS, END, edited, feature_rows

from pipelines.config import DataCheckThresholds, Settings
from pipelines.contracts.load import LoadedContract, load_contract
from pipelines.feature_check.data import run_data_checks
from pipelines.report import Finding

FRESH = END + timedelta(minutes=1)


def by_rule(findings: list[Finding], rule: str) -> list[Finding]:
    return [f for f in findings if f.rule == rule]


def problems(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity != "info"]


def line_of(loaded: LoadedContract, *path: str | int) -> int:
    return loaded.locate(tuple(path)).line


def test_a_clean_table_passes_with_only_the_estimate(merchant: LoadedContract, settings: Settings,
                                                     write_table: Callable[..., Path]) -> None:
    write_table(merchant.contract, feature_rows(merchant.contract))

    [report] = run_data_checks([merchant], settings, now=FRESH)

    assert problems(report.findings) == [], [f.render() for f in report.findings]
    [estimate] = by_rule(report.findings, "state-estimate")
    assert "50 active keys (delta)" in estimate.message  # one row per entity and window: 50 entities per window_end
    assert (report.name, report.version, report.file) == ("merchant_risk_profile", "2.1.0", merchant.file)


def test_defects_fire_their_rules_at_the_contract_lines(settings: Settings, write_table: Callable[..., Path]) -> None:
    user = load_contract(CONTRACTS / "user_txn_stats.yaml")
    contract = user.contract
    rows = feature_rows(contract, null_share={"amount_avg_1h": 0.02, "last_country_1h": 0.04,
                                              "amount_max_1h": 0.2})
    negative = pc.if_else(pa.array([i == 7 for i in range(rows.num_rows)]), -3, rows["txn_count_5m"])
    rows = rows.set_column(rows.schema.get_field_index("txn_count_5m"), "txn_count_5m", negative.cast(pa.int64()))
    duplicate = rows.slice(0, 1)
    write_table(contract, pa.concat_tables([rows, duplicate]))

    [report] = run_data_checks([user], settings, now=FRESH)
    findings = report.findings

    null_rate = {f.message.split("`")[1]: f for f in by_rule(findings, "data-null-rate")}
    # amount_avg_1h (2 %) breaks the contract-wide 0.5 %; last_country_1h (4 %) stays under its own 5 %
    assert set(null_rate) == {"amount_avg_1h", "amount_max_1h"}
    assert null_rate["amount_avg_1h"].line == line_of(user, "sla", "null_rate_max")
    assert null_rate["amount_avg_1h"].severity == "error" and "the limit is 0.5 %" in null_rate["amount_avg_1h"].message
    [unique] = by_rule(findings, "data-unique-window")
    assert unique.line == line_of(user, "entity", "join_keys") and "2 rows" in unique.message
    [negative_count] = by_rule(findings, "data-value-range")
    assert negative_count.line == line_of(user, "features", 0, "aggregation") and "1 of" in negative_count.message
    assert not by_rule(findings, "data-schema") and not by_rule(findings, "data-null-key")


def test_a_per_feature_limit_points_at_its_own_setting(settings: Settings, write_table: Callable[..., Path]) -> None:
    user = load_contract(CONTRACTS / "user_txn_stats.yaml")
    write_table(user.contract, feature_rows(user.contract, null_share={"last_country_1h": 0.08}))

    [report] = run_data_checks([user], settings, now=FRESH)

    [finding] = by_rule(report.findings, "data-null-rate")
    assert finding.line == line_of(user, "sla", "features", "last_country_1h", "null_rate_max")
    assert finding.yaml_path == "sla.features.last_country_1h.null_rate_max"
    assert "null in 8 % of 1,200 rows" in finding.message and "the limit is 5 %" in finding.message


def test_wrong_types_missing_columns_and_stale_windows(merchant: LoadedContract, settings: Settings,
                                                       write_table: Callable[..., Path]) -> None:
    # The table was written by a contract whose count is a double and which lacks the last feature.
    writer = edited(merchant, "    window: 1h\n    type: int64\n    description: Transactions in the hour.",
                    "    window: 1h\n    type: double\n    description: Transactions in the hour.")
    text = Path(writer.file).read_text().replace("type: int64\n    description: Transactions in the hour.",
                                                 "type: double\n    description: Transactions in the hour.")
    cut = text.index("  - name: distinct_countries_1h")
    text = text[:cut] + text[text.index("\nserving:"):]
    from pipelines.contracts.load import load_contract_text

    writer_contract = load_contract_text(text, "writer.yaml").contract
    write_table(writer_contract, feature_rows(writer_contract))

    [report] = run_data_checks([merchant], settings, now=END + timedelta(hours=2))

    schema = by_rule(report.findings, "data-schema")
    assert {f.yaml_path for f in schema} == {"features", "features[0].type"}, [f.render() for f in schema]
    typed = next(f for f in schema if f.yaml_path == "features[0].type")
    assert typed.line == line_of(merchant, "features", 0, "type") and "float64" in typed.message
    columns = next(f for f in schema if f.yaml_path == "features")
    assert "missing: distinct_countries_1h" in columns.message
    [stale] = by_rule(report.findings, "data-freshness")
    assert stale.severity == "warning" and stale.line == line_of(merchant, "sla", "freshness")
    assert "2h ago" in stale.message and "allows 10m" in stale.message


def test_consistency_with_the_previous_version(merchant: LoadedContract, settings: Settings,
                                               write_table: Callable[..., Path]) -> None:
    contract = merchant.contract
    write_table(contract, feature_rows(contract))
    later = END + timedelta(days=1)
    shifted = feature_rows(contract, seed=1, end=later, ingested_at=later + timedelta(minutes=1))
    shifted = shifted.set_column(shifted.schema.get_field_index("amount_sum_1h"), "amount_sum_1h",
                                 pc.multiply(shifted["amount_sum_1h"], 4.0))
    write_table(contract, shifted)

    [report] = run_data_checks([merchant], settings, now=later + timedelta(minutes=5))

    shifts = by_rule(report.findings, "data-distribution-shift")
    assert [f.yaml_path for f in shifts] == ["features[1]"], [f.render() for f in shifts]
    assert shifts[0].line == line_of(merchant, "features", 1) and "PSI" in shifts[0].message
    assert not by_rule(report.findings, "data-row-count-shift")  # 2 400 rows after 1 200: +100 % is allowed

    # An overwrite that keeps a third of the rows: the row count dropped.
    write_table(contract, feature_rows(contract, entities=20, end=later, ingested_at=later), mode="overwrite")
    strict = Settings(data_dir=settings.data_dir, data_checks=DataCheckThresholds(psi_max=100.0, ks_max=1.0))
    [report] = run_data_checks([merchant], strict, now=later + timedelta(minutes=5))
    [drop] = by_rule(report.findings, "data-row-count-shift")
    assert drop.severity == "warning" and drop.line == 0 and drop.yaml_path == "data.row_count"
    assert "2,400 rows" in drop.message and "480" in drop.message
    assert not by_rule(report.findings, "data-distribution-shift")


def test_verdicts_on_the_change_against_the_base(merchant: LoadedContract, settings: Settings,
                                                 write_table: Callable[..., Path]) -> None:
    base = edited(merchant, "null_rate_max: 0.0", "null_rate_max: 0.01")
    head = edited(merchant, "null_rate_max: 0.0", "null_rate_max: 0.001")
    write_table(merchant.contract, feature_rows(merchant.contract, entities=50, windows=20,
                                                null_share={"amount_min_1h": 0.004}))

    [report] = run_data_checks([head], settings, base_contracts={"merchant_risk_profile": base.contract}, now=FRESH)

    [verdict] = by_rule(report.findings, "data-limit-already-violated")
    assert verdict.severity == "error" and verdict.line == line_of(head, "sla", "null_rate_max")
    assert "new null-rate limit of 0.1 %" in verdict.message and "0.4 % of current rows" in verdict.message
    assert not by_rule(report.findings, "data-null-rate")  # the verdict replaces the plain finding

    loosened = edited(merchant, "null_rate_max: 0.0", "null_rate_max: 0.05")
    [report] = run_data_checks([loosened], settings, base_contracts={"merchant_risk_profile": base.contract},
                               now=FRESH)
    [loose] = by_rule(report.findings, "data-limit-loosened")
    assert loose.severity == "info" and loose.line == line_of(loosened, "sla", "null_rate_max")
    assert "from 1 % to 5 %" in loose.message and "`amount_min_1h`, 0.4 %" in loose.message


def test_a_feature_added_by_the_change_waits_for_data(settings: Settings, write_table: Callable[..., Path]) -> None:
    user = load_contract(CONTRACTS / "user_txn_stats.yaml")
    head = edited(user, "\nserving:", "  - name: amount_min_1h\n    aggregation: min\n    column: amount\n"
                                      "    window: {size: 1h, slide: 5m}\n    type: double\n"
                                      "    description: Smallest amount.\n\nserving:")
    write_table(user.contract, feature_rows(user.contract))

    [report] = run_data_checks([head], settings, base_contracts={"user_txn_stats": user.contract}, now=FRESH)
    assert [f.yaml_path for f in by_rule(report.findings, "data-new-feature")] == ["features[7]"]
    assert problems(report.findings) == [], [f.render() for f in report.findings]

    [report] = run_data_checks([head], settings, now=FRESH)  # without the base, the column is simply missing
    assert "missing: amount_min_1h" in by_rule(report.findings, "data-schema")[0].message


def test_no_table_yet(merchant: LoadedContract, settings: Settings) -> None:
    [report] = run_data_checks([merchant], settings, now=FRESH)
    [missing] = by_rule(report.findings, "data-no-table")
    assert missing.severity == "warning" and missing.line == 0

    bumped = edited(merchant, "version: 2.1.0", "version: 3.0.0")
    [report] = run_data_checks([bumped], settings, base_contracts={"merchant_risk_profile": merchant.contract},
                               now=FRESH)
    [missing] = by_rule(report.findings, "data-no-table")
    assert missing.severity == "info" and missing.line == line_of(bumped, "version")
    assert "default" in by_rule(report.findings, "state-estimate")[0].message


@pytest.mark.parametrize("unit", ["ms", "ns"])
def test_timestamps_in_another_unit_fail_the_type_check(unit: str, merchant: LoadedContract, settings: Settings,
                                                        write_table: Callable[..., Path]) -> None:
    """The suite checks the types the Delta layout promises, not whatever pandas happens to produce."""
    from pipelines.feature_check.data.gx_run import to_frame

    rows = feature_rows(merchant.contract, entities=2, windows=2)
    frame = to_frame(rows.set_column(rows.schema.get_field_index("window_end"), "window_end",
                                     rows["window_end"].cast(pa.timestamp(unit, tz="UTC"))))
    assert str(frame["window_end"].dtype) == f"datetime64[{unit}]"
    assert str(to_frame(rows)["window_end"].dtype) == "datetime64[us]"
