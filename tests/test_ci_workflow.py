"""The CI workflow in ci/ is valid YAML and runs the same feature-check command users run."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def test_feature_check_workflow_runs_on_contract_changes() -> None:
    workflow = yaml.safe_load((ROOT / "ci" / "feature-check.yml").read_text())
    # PyYAML reads the bare key `on` as the boolean True (YAML 1.1).
    trigger = workflow[True]["pull_request"]["paths"]
    assert trigger == ["contracts/**"]
    steps = workflow["jobs"]["feature-check"]["steps"]
    commands = [step.get("run", "") for step in steps]
    assert any(command.startswith(".venv/bin/feature-check contracts/") for command in commands)
    assert any("uv sync --frozen" in command for command in commands)
