"""The editor JSON Schema: generated from the model, checked in, accepting exactly what the loader accepts."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from pipelines.contracts.schema import REGENERATE, SCHEMA_PATH, contract_json_schema, main, render_schema

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "contracts").glob("*.yaml"))


def test_checked_in_schema_is_up_to_date() -> None:
    assert SCHEMA_PATH == ROOT / "contracts" / "contract.schema.json"
    assert SCHEMA_PATH.exists(), f"{SCHEMA_PATH} is missing; generate it with `{REGENERATE}`"
    assert SCHEMA_PATH.read_text(encoding="utf-8") == render_schema(), (
        f"{SCHEMA_PATH.name} is stale (the contract model changed); regenerate it with `{REGENERATE}` and commit it")


def test_check_mode_reports_stale_and_fresh_files(tmp_path: Path) -> None:
    target = tmp_path / "contract.schema.json"
    assert main(["--check", "--output", str(target)]) == 1  # missing counts as stale
    assert main(["--output", str(target)]) == 0
    assert target.read_text(encoding="utf-8") == render_schema()
    assert main(["--check", "--output", str(target)]) == 0
    target.write_text(render_schema().replace("Feature contract", "Old title"), encoding="utf-8")
    assert main(["--check", "--output", str(target)]) == 1


def test_module_runs_as_a_script() -> None:
    result = subprocess.run([sys.executable, "-m", "pipelines.contracts.schema", "--check"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr


def test_schema_header_and_duration_defaults() -> None:
    schema = contract_json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] and schema["title"] == "Feature contract"
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$defs"]["Serving"]["properties"]["ttl"]["default"] == "1d"
    assert schema["$defs"]["Source"]["properties"]["allowed_lateness"]["default"] == "0s"
    assert "PT" not in json.dumps(schema), "durations must be shown as people write them, not ISO-8601"


def validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text(encoding="utf-8")))


def example(name: str = "user_txn_stats") -> dict[str, Any]:
    return yaml.safe_load((ROOT / "contracts" / f"{name}.yaml").read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_examples_are_valid_against_the_schema(path: Path) -> None:
    errors = [e.message for e in validator().iter_errors(example(path.stem))]
    assert errors == []


def test_examples_use_the_shorthands_the_schema_must_allow() -> None:
    data = example()
    assert isinstance(data["features"][0]["window"], str)
    assert isinstance(data["source"]["schema"]["user_id"], str)


@pytest.mark.parametrize(("change", "expected"), [
    (lambda d: d["features"][0].update(windw="5m"), "'windw' was unexpected"),
    (lambda d: d["features"][0].update(window="5 minutes"), "is not valid under any of the given schemas"),
    (lambda d: d["source"]["schema"].update(Amount="double"), "does not match"),
    (lambda d: d["source"]["schema"].update(amount="decimal"), "is not valid under any of the given schemas"),
    (lambda d: d["degradation"].update({"Bad-Name": {"fallback": "none"}}), "does not match"),
    (lambda d: d["sla"].update(freshness="2 minutes"), "does not match"),
    (lambda d: d.pop("sla"), "'sla' is a required property"),
    (lambda d: d.update(version="1.0"), "does not match"),
])
def test_schema_rejects_what_the_loader_rejects(change: Any, expected: str) -> None:
    data = copy.deepcopy(example())
    change(data)
    messages = [e.message for e in validator().iter_errors(data)]
    assert any(expected in m for m in messages), messages
