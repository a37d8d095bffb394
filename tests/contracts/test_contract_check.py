"""Semantic rules beyond the one-defect corpus: the type tables, the one-step rule's advice, file handling, examples."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.contracts.check import RULES, check_contracts, check_loaded, collect_contract_files, contract_step
from pipelines.contracts.load import load_contract_text
from pipelines.contracts.types import aggregation_accepts, fallback_value_matches, feature_output_type

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "contracts").glob("*.yaml"))

HEADER = """\
name: {name}
version: {version}
owner: team@example.com
description: Test contract.
entity: {{name: user, join_keys: [user_id]}}
source:
  name: transactions
  event_time: event_ts
  schema: {{user_id: string, amount: double, n: int32, flag: boolean, country: string, event_ts: timestamp}}
sla: {{freshness: 2m}}
features:
"""


def contract_text(*features: str, name: str = "user_stats", version: str = "1.0.0") -> str:
    return HEADER.format(name=name, version=version) + "".join(f"  - {{{f}, description: x}}\n" for f in features)


def rules_of(text: str) -> list[tuple[str, str]]:
    return [(f.rule, f.yaml_path) for f in check_loaded(load_contract_text(text, "c.yaml"))]


# --- the examples ------------------------------------------------------------------------------------------------


def test_there_are_three_examples() -> None:
    assert [p.name for p in EXAMPLES] == ["merchant_risk_profile.yaml", "session_clickstream.yaml",
                                          "user_txn_stats.yaml"]


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_contract_passes_without_findings(example: Path) -> None:
    [report] = check_contracts([example])
    assert report.ok and report.findings == [], "\n".join(f.render() for f in report.findings)
    assert report.name == example.stem


def test_examples_pass_together() -> None:
    reports = check_contracts([ROOT / "contracts"])
    assert [Path(r.file).name for r in reports] == [p.name for p in EXAMPLES]  # the .json schema is not a contract
    assert all(r.ok and not r.findings for r in reports)


# --- type tables -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("aggregation", "column_type", "expected"), [
    ("count", None, "int64"), ("count", "timestamp", "int64"), ("count", "string", "int64"),
    ("count_distinct", "string", "int64"), ("count_distinct", "boolean", "int64"),
    ("avg", "int32", "double"), ("avg", "float", "double"),
    ("sum", "int32", "int64"), ("sum", "int64", "int64"), ("sum", "float", "double"), ("sum", "double", "double"),
    ("min", "int32", "int64"), ("max", "float", "double"), ("min", "string", "string"), ("max", "int64", "int64"),
    ("last", "boolean", "boolean"), ("last", "string", "string"), ("last", "int32", "int64"),
    ("last", "double", "double"),
])
def test_feature_output_type(aggregation: str, column_type: str | None, expected: str) -> None:
    assert feature_output_type(aggregation, column_type) == expected


@pytest.mark.parametrize(("aggregation", "column_type"), [
    ("sum", "string"), ("sum", "boolean"), ("avg", "timestamp"), ("min", "boolean"), ("max", "timestamp"),
    ("count_distinct", "timestamp"), ("last", "timestamp"), ("sum", None), ("last", None),
])
def test_refused_combinations(aggregation: str, column_type: str | None) -> None:
    assert not aggregation_accepts(aggregation, column_type)
    with pytest.raises(ValueError, match=aggregation):
        feature_output_type(aggregation, column_type)


@pytest.mark.parametrize(("feature_type", "value", "ok"), [
    ("int64", 0, True), ("int64", 0.0, False), ("int64", True, False), ("int64", "0", False),
    ("double", 0, True), ("double", 0.5, True), ("double", False, False), ("double", "0.5", False),
    ("string", "unknown", True), ("string", 1, False),
    ("boolean", False, True), ("boolean", 0, False), ("boolean", "false", False),
])
def test_fallback_value_matches(feature_type: str, value: object, ok: bool) -> None:
    assert fallback_value_matches(feature_type, value) is ok


def test_declared_type_follows_the_column_type() -> None:
    assert rules_of(contract_text("name: n_sum, aggregation: sum, column: n, window: 5m, type: int64")) == []
    assert rules_of(contract_text("name: n_sum, aggregation: sum, column: n, window: 5m, type: double")) == [
        ("feature-type", "features[0].type")]
    assert rules_of(contract_text("name: n_max, aggregation: max, column: flag, window: 5m, type: boolean")) == [
        ("aggregation-type", "features[0].aggregation")]  # no second finding about the type
    assert rules_of(contract_text("name: n_cnt, aggregation: count, column: flag, window: 5m, type: int64")) == []


def test_missing_or_unknown_column_is_reported_once() -> None:
    assert rules_of(contract_text("name: s, aggregation: avg, window: 5m, type: int64")) == [
        ("missing-column", "features[0].aggregation")]
    assert rules_of(contract_text("name: s, aggregation: avg, column: nope, window: 5m, type: int64")) == [
        ("unknown-column", "features[0].column")]


# --- windows and the one-step rule ---------------------------------------------------------------------------------


def test_one_step_names_the_reason_and_suggests_a_window() -> None:
    text = contract_text("name: a_5m, aggregation: count, window: 5m, type: int64",
                         "name: b_5m, aggregation: count, window: {size: 1h, slide: 5m}, type: int64",
                         "name: c_1h, aggregation: count, window: 1h, type: int64",
                         "name: d_7m, aggregation: count, window: 7m, type: int64",
                         "name: e_1m, aggregation: count, window: 1m, type: int64")
    findings = check_loaded(load_contract_text(text, "c.yaml"))
    assert [(f.rule, f.yaml_path) for f in findings] == [("one-step", f"features[{i}].window") for i in (2, 3, 4)]
    one_hour, seven_minutes, one_minute = (f.message for f in findings)
    assert "ONE row per entity per step" in one_hour and "Delta table and Feast feature view" in one_hour
    assert "emits every 1h but the contract's step is 5m (2 of 5 features" in one_hour
    assert "`window: {size: 1h, slide: 5m}`" in one_hour
    assert "`window: {size: 10m, slide: 5m}`" in seven_minutes  # rounded up to a whole number of steps
    assert "`window: 5m`" in one_minute


def test_step_is_the_most_common_and_ties_go_to_the_first_feature() -> None:
    text = contract_text("name: a, aggregation: count, window: 1h, type: int64",
                         "name: b, aggregation: count, window: 5m, type: int64",
                         "name: c, aggregation: count, window: {size: 1h, slide: 5m}, type: int64")
    loaded = load_contract_text(text, "c.yaml")
    assert contract_step(loaded.contract).total_seconds() == 300
    assert [(f.rule, f.yaml_path) for f in check_loaded(loaded)] == [("one-step", "features[0].window")]
    tie = contract_text("name: a, aggregation: count, window: 1h, type: int64",
                        "name: b, aggregation: count, window: 5m, type: int64")
    assert [(f.rule, f.yaml_path) for f in check_loaded(load_contract_text(tie, "c.yaml"))] == [
        ("one-step", "features[1].window")]


def test_broken_windows_are_not_reported_twice() -> None:
    text = contract_text("name: a, aggregation: count, window: 5m, type: int64",
                         "name: b, aggregation: count, window: {size: 1h, slide: 7m}, type: int64",
                         "name: c, aggregation: count, window: {size: 1h, slide: 0s}, type: int64")
    findings = check_loaded(load_contract_text(text, "c.yaml"))
    assert [(f.rule, f.yaml_path) for f in findings] == [("window-slide", "features[1].window.slide"),
                                                         ("window-slide", "features[2].window.slide")]
    assert "`window: {size: 1h, slide: 6m}`" in findings[0].message
    assert "`window: 1h`" in findings[1].message


def test_slide_equal_to_size_is_a_tumbling_window() -> None:
    assert rules_of(contract_text("name: a, aggregation: count, window: 5m, type: int64",
                                  "name: b, aggregation: count, window: {size: 5m, slide: 5m}, type: int64")) == []


def test_millisecond_windows_work() -> None:
    assert rules_of(contract_text("name: a, aggregation: count, window: {size: 1500ms, slide: 500ms}, type: int64",
                                  "name: b, aggregation: count, window: 500ms, type: int64")) == []


def test_several_defects_are_all_reported_in_file_order() -> None:
    text = contract_text("name: event_ts, aggregation: sum, column: country, window: 5m, type: int64",
                         "name: event_ts, aggregation: count, window: {size: 5m, slide: 10m}, type: double")
    findings = check_loaded(load_contract_text(text, "c.yaml"))
    assert [f.rule for f in findings] == ["name-clash", "aggregation-type", "duplicate-feature", "name-clash",
                                          "window-slide", "feature-type"]
    assert findings == sorted(findings)
    assert {f.rule for f in findings} <= set(RULES)


# --- files and folders -------------------------------------------------------------------------------------------


def test_missing_path_is_an_error_not_an_empty_success(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope"):
        check_contracts([tmp_path / "nope"])


def test_each_file_is_checked_once(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(contract_text("name: a, aggregation: count, window: 5m, type: int64"))
    assert collect_contract_files([tmp_path, tmp_path / "a.yaml", tmp_path]) == [tmp_path / "a.yaml"]
    assert len(check_contracts([tmp_path, tmp_path / "a.yaml"])) == 1


def test_a_file_that_does_not_load_gets_a_report_and_the_others_are_still_checked(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("name: [\n")
    (tmp_path / "b.yaml").write_text(contract_text("name: a, aggregation: count, window: 5m, type: int64"))
    broken, fine = check_contracts([tmp_path])
    assert (broken.name, broken.ok, [f.rule for f in broken.findings]) == (None, False, ["yaml-syntax"])
    assert (fine.name, fine.version, fine.ok) == ("user_stats", "1.0.0", True)


def test_cross_contract_rules_see_every_path(tmp_path: Path) -> None:
    feature = "name: a, aggregation: count, window: 5m, type: int64"
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    (tmp_path / "one" / "a.yaml").write_text(contract_text(feature, version="1.0.0"))
    (tmp_path / "two" / "b.yaml").write_text(contract_text(feature, version="1.1.0"))
    (tmp_path / "two" / "c.yaml").write_text(contract_text(feature, version="2.0.0"))
    (tmp_path / "two" / "d.yaml").write_text(contract_text(feature, name="other_stats"))
    reports = {Path(r.file).name: r for r in check_contracts([tmp_path / "one", tmp_path / "two"])}
    assert [f.rule for f in reports["a.yaml"].findings] == ["duplicate-table"]
    assert str(tmp_path / "two" / "b.yaml") in reports["a.yaml"].findings[0].message
    assert [f.rule for f in reports["b.yaml"].findings] == ["duplicate-table"]
    assert [f.rule for f in reports["c.yaml"].findings] == ["duplicate-contract"]
    assert reports["d.yaml"].findings == []
    assert (reports["c.yaml"].findings[0].line, reports["c.yaml"].findings[0].column) == (1, 7)
