"""The model and the loader: durations, shorthands, strictness, and the guards against hostile or broken files."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest

from pipelines.contracts.durations import format_duration, parse_duration
from pipelines.contracts.load import (
    MAX_CONTRACT_BYTES,
    MAX_DEPTH,
    ContractLoadError,
    iter_contract_files,
    load_contract,
    load_contract_text,
)

MINIMAL = """\
name: user_stats
version: 1.2.3
owner: team@example.com
description: Minimal contract.
entity: {name: user, join_keys: [user_id]}
source:
  name: transactions
  event_time: event_ts
  schema: {user_id: string, amount: {type: double, required: true}, event_ts: timestamp}
features:
  - {name: txn_count_5m, aggregation: count, window: 5m, type: int64, description: Events.}
  - name: amount_sum_1h
    aggregation: sum
    column: amount
    window: {size: 1h, slide: 5m}
    type: double
    description: Spend.
sla: {freshness: 2m}
"""


def load_error(text: str) -> ContractLoadError:
    with pytest.raises(ContractLoadError) as caught:
        load_contract_text(text, "c.yaml")
    return caught.value


def single_rule(error: ContractLoadError) -> tuple[int, int, str]:
    assert len(error.findings) == 1, error.findings
    finding = error.findings[0]
    return finding.line, finding.column, finding.rule


# --- durations ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("0s", timedelta(0)), ("250ms", timedelta(milliseconds=250)), ("30s", timedelta(seconds=30)),
    ("5m", timedelta(minutes=5)), ("1h", timedelta(hours=1)), ("7d", timedelta(days=7)), (" 2m ", timedelta(minutes=2)),
])
def test_durations_parse(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["5", "5 m", "1.5h", "-1m", "05m", "1w", "", "m", True, 5, None, "1h30m"])
def test_bad_durations_are_rejected_with_the_expected_form(text: object) -> None:
    with pytest.raises(ValueError, match="duration such as"):
        parse_duration(text)


@pytest.mark.parametrize(("value", "text"), [
    (timedelta(minutes=60), "1h"), (timedelta(seconds=90), "90s"), (timedelta(days=2), "2d"),
    (timedelta(milliseconds=1500), "1500ms"), (timedelta(minutes=5), "5m"),
])
def test_durations_format_to_their_shortest_exact_spelling(value: timedelta, text: str) -> None:
    assert format_duration(value) == text
    assert parse_duration(text) == value


# --- the model through the loader --------------------------------------------------------------------------------


def test_minimal_contract_loads_with_shorthands_expanded_and_defaults() -> None:
    loaded = load_contract_text(MINIMAL, "c.yaml")
    contract = loaded.contract
    assert contract.source.columns["user_id"].type == "string"
    assert contract.source.columns["user_id"].required is False
    assert contract.source.columns["amount"].required is True
    count, amount = contract.features
    assert count.window.size == timedelta(minutes=5) and count.window.slide is None
    assert count.window.kind == "tumbling" and count.window.step == timedelta(minutes=5)
    assert amount.window.kind == "sliding" and amount.window.step == timedelta(minutes=5)
    assert contract.step == timedelta(minutes=5) and contract.max_window == timedelta(hours=1)
    assert contract.major_version == 1 and contract.table_name == "user_stats_v1"
    assert contract.serving.online is True and contract.serving.ttl == timedelta(days=1)
    assert contract.source.allowed_lateness == timedelta(0)
    assert contract.rollout.steps == [0, 5, 50, 100]
    assert contract.degradation == {}


def test_positions_point_at_values_and_keys() -> None:
    loaded = load_contract_text(MINIMAL, "c.yaml")
    assert loaded.locate(("features", 1, "window", "slide")) == loaded.positions[("features", 1, "window", "slide")]
    assert (loaded.locate(("features", 1, "column")).line, loaded.locate(("features", 1, "column")).column) == (14, 13)
    # A path that is not written in the file falls back to its deepest written ancestor.
    assert loaded.locate(("serving", "ttl")).line == 1
    finding = loaded.finding(("sla", "freshness"), "some-rule", "message")
    assert (finding.file, finding.line, finding.column, finding.yaml_path) == ("c.yaml", 18, 18, "sla.freshness")


def test_content_hash_ignores_formatting_but_not_content() -> None:
    reformatted = MINIMAL.replace("sla: {freshness: 2m}", "sla:\n  freshness: 120s  # two minutes\n")
    changed = MINIMAL.replace("freshness: 2m", "freshness: 3m")
    first = load_contract_text(MINIMAL, "a").contract.content_hash()
    assert load_contract_text(reformatted, "b").contract.content_hash() == first
    assert load_contract_text(changed, "c").contract.content_hash() != first


def test_unknown_key_is_located_at_the_key() -> None:
    error = load_error(MINIMAL.replace("    type: double\n", "    type: double\n    unti: EUR\n"))
    assert single_rule(error) == (17, 5, "unknown-key")
    assert "unti" in error.findings[0].message and error.findings[0].yaml_path == "features[1].unti"


def test_unknown_top_level_key() -> None:
    assert single_rule(load_error(MINIMAL + "servign: {ttl: 1h}\n")) == (19, 1, "unknown-key")


def test_missing_nested_key_points_at_its_parent_key() -> None:
    error = load_error(MINIMAL.replace("  event_time: event_ts\n", ""))
    assert single_rule(error) == (6, 1, "missing-key")
    assert error.findings[0].yaml_path == "source.event_time"


def test_duplicate_keys_are_errors_not_last_one_wins() -> None:
    error = load_error(MINIMAL.replace("  name: transactions\n", "  name: transactions\n  name: payments\n"))
    assert single_rule(error) == (8, 3, "duplicate-key")


@pytest.mark.parametrize(("old", "new", "path"), [
    ("version: 1.2.3", "version: v1", "version"),
    ("name: user_stats", "name: UserStats", "name"),
    ("window: 5m,", "window: 5 min,", "features[0].window.size"),
    ("sla: {freshness: 2m}", "sla: {freshness: 2m, null_rate_max: 1.5}", "sla.null_rate_max"),
    ("type: int64,", "type: integer,", "features[0].type"),
])
def test_invalid_values_name_their_path(old: str, new: str, path: str) -> None:
    error = load_error(MINIMAL.replace(old, new))
    assert [(f.rule, f.yaml_path) for f in error.findings] == [("invalid-value", path)]


def test_fallback_value_only_with_default() -> None:
    error = load_error(MINIMAL + "degradation: {txn_count_5m: {fallback: last_known, value: 0}}\n")
    assert error.findings[0].rule == "invalid-value"
    assert "only allowed with `fallback: default`" in error.findings[0].message


def test_rollout_steps_must_increase_to_100() -> None:
    error = load_error(MINIMAL + "rollout: {steps: [0, 50, 20]}\n")
    assert "strictly increasing" in error.findings[0].message
    error = load_error(MINIMAL + "rollout: {steps: [0, 50]}\n")
    assert "must be 100" in error.findings[0].message


# --- hostile and broken files ------------------------------------------------------------------------------------


BILLION_LAUGHS = "\n".join(
    ['lol0: &lol0 "lol"']
    + [f"lol{i}: &lol{i} [{', '.join([f'*lol{i - 1}'] * 10)}]" for i in range(1, 10)]
    + ["name: *lol9"]
) + "\n"


def test_billion_laughs_fails_fast() -> None:
    started = time.perf_counter()
    error = load_error(BILLION_LAUGHS)
    elapsed = time.perf_counter() - started
    assert single_rule(error) == (1, 7, "yaml-alias")
    assert elapsed < 0.2, f"alias bomb took {elapsed:.3f}s"


def test_alias_without_anchor_declared_on_the_same_node_is_refused_too() -> None:
    text = MINIMAL.replace("owner: team@example.com", "owner: &who team@example.com") + "description_copy: *who\n"
    assert load_error(text).findings[0].rule == "yaml-alias"


@pytest.mark.parametrize("levels", [MAX_DEPTH + 1, 500, 5000, 100_000])
def test_nesting_deeper_than_the_limit_fails_fast(levels: int) -> None:
    deep = "x: " + "[" * levels + "]" * levels + "\n"  # would exhaust recursion if it were ever built
    started = time.perf_counter()
    line, column, rule = single_rule(load_error(deep))
    assert (line, rule) == (1, "yaml-depth")
    if levels < 1000:  # beyond that libyaml's own limit answers first, further along the line
        assert column == len("x: ") + MAX_DEPTH  # the root mapping is level 1
    assert time.perf_counter() - started < 0.5


def test_deep_block_nesting_fails_fast() -> None:
    deep = "x:\n" + "".join(" " * i + "-\n" for i in range(1, 3000))
    started = time.perf_counter()
    assert single_rule(load_error(deep)) == (MAX_DEPTH + 1, MAX_DEPTH + 1, "yaml-depth")  # line 17: 16 spaces, `-`
    assert time.perf_counter() - started < 0.5


def test_nesting_within_the_limit_is_fine_for_the_loader() -> None:
    nested = "x: " + "[" * (MAX_DEPTH - 2) + "]" * (MAX_DEPTH - 2) + "\n"
    # Parsed fine; rejected only later by the model (an unknown top-level key), not by the depth guard.
    assert {f.rule for f in load_error(nested).findings} >= {"unknown-key"}
    assert "yaml-depth" not in {f.rule for f in load_error(nested).findings}


def test_oversized_file_is_refused_before_reading(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_text(MINIMAL + "# " + "x" * MAX_CONTRACT_BYTES + "\n")
    with pytest.raises(ContractLoadError) as caught:
        load_contract(big)
    assert [(f.line, f.column, f.rule) for f in caught.value.findings] == [(1, 1, "too-large")]


def test_binary_garbage_is_refused(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.yaml"
    garbage.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(ContractLoadError) as caught:
        load_contract(garbage)
    assert [f.rule for f in caught.value.findings] == ["not-text"]


def test_non_utf8_text_names_the_line(tmp_path: Path) -> None:
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes(MINIMAL.replace("Minimal contract.", "Caf\u00e9 contract.").encode("latin-1"))
    with pytest.raises(ContractLoadError) as caught:
        load_contract(latin1)
    assert [(f.line, f.rule) for f in caught.value.findings] == [(4, "not-text")]


def test_utf8_text_with_accents_is_fine() -> None:
    text = MINIMAL.replace("Minimal contract.", "Caf\u00e9 contract, \u00fcber \u2713.")
    assert load_contract_text(text, "c.yaml").contract.description == "Caf\u00e9 contract, \u00fcber \u2713."


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "---\n"])
def test_empty_documents(text: str) -> None:
    error = load_error(text)
    assert [f.rule for f in error.findings] in (["empty"], ["not-a-mapping"])


def test_empty_file_on_disk(tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    with pytest.raises(ContractLoadError) as caught:
        load_contract(empty)
    assert [(f.file, f.line, f.column, f.rule) for f in caught.value.findings] == [(str(empty), 1, 1, "empty")]


@pytest.mark.parametrize(("text", "kind"), [("- a\n- b\n", "list"), ("just text\n", "str"), ("42\n", "int")])
def test_top_level_must_be_a_mapping(text: str, kind: str) -> None:
    error = load_error(text)
    assert single_rule(error) == (1, 1, "not-a-mapping") and kind in error.findings[0].message


def test_several_documents_are_refused() -> None:
    assert load_error(MINIMAL + "---\nname: second\n").findings[0].rule == "yaml-syntax"


def test_python_tags_are_not_constructed() -> None:
    text = MINIMAL.replace("owner: team@example.com", "owner: !!python/object/apply:os.system ['true']")
    assert [f.rule for f in load_error(text).findings] == ["yaml-tag"]


def test_dangling_link_is_unreadable(tmp_path: Path) -> None:
    link = tmp_path / "gone.yaml"
    link.symlink_to(tmp_path / "missing.yaml")
    with pytest.raises(ContractLoadError) as caught:
        load_contract(link)
    assert [f.rule for f in caught.value.findings] == ["unreadable"]


def test_iter_contract_files_skips_hidden_and_non_yaml(tmp_path: Path) -> None:
    for name in ("b.yaml", "a.yml", "sub/c.yaml", ".hidden/d.yaml", "_draft/e.yaml", ".f.yaml", "schema.json", "g.txt"):
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x: 1\n")
    found = [p.relative_to(tmp_path).as_posix() for p in iter_contract_files(tmp_path)]
    assert found == ["a.yml", "b.yaml", "sub/c.yaml"]
    assert list(iter_contract_files(tmp_path / "b.yaml")) == [tmp_path / "b.yaml"]


# --- robustness --------------------------------------------------------------------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

YAMLISH = st.text(alphabet=st.sampled_from(list("ab:- \n{}[],&*!|>'\"#%@`0123456789.\t")), max_size=200)


@settings(max_examples=300, deadline=None)
@given(st.one_of(YAMLISH, st.text(max_size=200)))
def test_any_text_loads_or_fails_with_findings(text: str) -> None:
    """Whatever anyone writes, the loader answers with a contract or located findings, never a crash."""
    try:
        load_contract_text(text, "fuzz.yaml")
    except ContractLoadError as error:
        assert error.findings and all(f.line >= 1 and f.column >= 1 and f.rule for f in error.findings)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_load_or_fail_with_findings(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "c.yaml"
    path.write_bytes(data)
    try:
        load_contract(path)
    except ContractLoadError as error:
        assert error.findings and all(f.line >= 1 and f.column >= 1 for f in error.findings)
