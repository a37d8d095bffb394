"""docs/contracts.md must match the code: every key, every rule, the complete example and the sample output."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, get_args, get_origin

from pydantic import BaseModel

from pipelines.contracts.check import RULES, check_contracts
from pipelines.contracts.load import LOADER_RULES, MAX_CONTRACT_BYTES, MAX_DEPTH, load_contract_text
from pipelines.contracts.model import Aggregation, ColumnType, Contract, FallbackKind, FeatureType

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "contracts.md").read_text(encoding="utf-8")


def model_classes(model: type[BaseModel]) -> set[type[BaseModel]]:
    """The model and every model reachable through its fields (lists, dicts, optionals included)."""
    found = {model}

    def visit(annotation: Any) -> None:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel) and annotation not in found:
            found.update(model_classes(annotation))
        for arg in get_args(annotation) if get_origin(annotation) is not None else ():
            visit(arg)

    for field in model.model_fields.values():
        visit(field.annotation)
    return found


def test_every_key_of_every_section_is_documented_in_a_table() -> None:
    documented = set(re.findall(r"^\| `([a-z_0-9]+)` \|", DOC, flags=re.MULTILINE))
    classes = model_classes(Contract)
    assert len(classes) >= 10
    keys = {field.alias or name for cls in classes for name, field in cls.model_fields.items()}
    assert keys - documented == set(), "keys missing from docs/contracts.md tables"


def test_every_rule_is_documented() -> None:
    documented = set(re.findall(r"^\| `([a-z-]+)` \|", DOC, flags=re.MULTILINE))
    assert set(RULES) - documented == set(), "semantic rules missing from docs/contracts.md"
    assert set(LOADER_RULES) - documented == set(), "loader rules missing from docs/contracts.md"


def test_enumerations_and_limits_match_the_code() -> None:
    for values in (ColumnType, FeatureType, Aggregation, FallbackKind):
        for value in get_args(values):
            assert f"`{value}`" in DOC, value
    assert f"{MAX_CONTRACT_BYTES // 1024} KiB" in DOC
    assert f"deeper than {MAX_DEPTH} levels" in DOC
    assert "^(0|[1-9][0-9]*)(ms|s|m|h|d)$" in DOC


def test_the_complete_example_is_a_valid_contract(tmp_path: Path) -> None:
    example = DOC.split("## A complete example", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    loaded = load_contract_text(example, "example.yaml")
    assert loaded.contract.name == "user_txn_stats"
    (tmp_path / "example.yaml").write_text(example, encoding="utf-8")
    [report] = check_contracts([tmp_path])
    assert report.ok and report.findings == [], [f.render() for f in report.findings]


def test_the_sample_output_is_what_feature_check_prints(tmp_path: Path) -> None:
    block = DOC.split("$ .venv/bin/feature-check\n", 1)[1].split("```", 1)[0]
    shutil.copytree(ROOT / "contracts", tmp_path / "contracts")
    contract = tmp_path / "contracts" / "user_txn_stats.yaml"
    text = contract.read_text(encoding="utf-8")
    changed = re.sub(r"(name: amount_sum_1h\n(?:    .*\n)*?    window: )\{size: 1h, slide: 5m\}", r"\g<1>1h", text)
    assert changed != text
    contract.write_text(changed, encoding="utf-8")
    script = Path(sys.executable).with_name("feature-check")
    result = subprocess.run([str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1
    assert result.stdout == block
