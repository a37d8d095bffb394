"""The CI workflow in ci/ and the pre-commit hooks run the same feature-check command users run, with real options."""

from __future__ import annotations

import shlex
from pathlib import Path

import yaml

from pipelines.feature_check.cli import _parser

ROOT = Path(__file__).resolve().parent.parent


def _workflow() -> dict:
    return yaml.safe_load((ROOT / "ci" / "feature-check.yml").read_text())


def test_feature_check_workflow_runs_on_contract_changes() -> None:
    workflow = _workflow()
    # PyYAML reads the bare key `on` as the boolean True (YAML 1.1).
    trigger = workflow[True]["pull_request"]["paths"]
    assert trigger == ["contracts/**"]
    steps = workflow["jobs"]["feature-check"]["steps"]
    commands = [step.get("run", "") for step in steps]
    assert any("uv sync --frozen" in command for command in commands)
    assert steps[0]["uses"].startswith("actions/checkout") and steps[0]["with"]["fetch-depth"] == 0


def test_the_check_step_compares_with_the_base_and_writes_every_report() -> None:
    steps = _workflow()["jobs"]["feature-check"]["steps"]
    check = next(step for step in steps if step.get("id") == "check")
    argv = shlex.split(check["run"].replace('"$BASE_REF"', "origin/main"))
    assert argv[0] == ".venv/bin/feature-check"
    args = _parser().parse_args(argv[1:])  # the options exist and parse
    assert args.base == "origin/main" and args.fail_on == "error"
    assert sorted(args.formats) == sorted(["github", "markdown=feature-check.md", "sarif=feature-check.sarif",
                                           "json=feature-check.json", "junit=feature-check.junit.xml"])
    assert check["env"]["BASE_REF"] == "origin/${{ github.base_ref }}"
    uses = {step.get("uses", "").split("@")[0]: step for step in steps}
    assert uses["github/codeql-action/upload-sarif"]["with"]["sarif_file"] == "feature-check.sarif"
    summary = " ".join(step.get("run", "") for step in steps)
    assert "feature-check.md >> \"$GITHUB_STEP_SUMMARY\"" in summary and "gh pr comment" in summary
    permissions = _workflow()["permissions"]
    assert permissions == {"contents": "read", "pull-requests": "write", "security-events": "write"}


def test_pre_commit_hooks_call_feature_check() -> None:
    hooks = {hook["id"]: hook for hook in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}
    assert hooks["feature-check"]["entry"] == "feature-check"
    assert hooks["feature-check"]["files"] == r"^contracts/.*\.ya?ml$"
    argv = shlex.split(hooks["feature-check-base"]["entry"])
    assert argv[0] == "feature-check" and _parser().parse_args(argv[1:]).base == "origin/main"


def test_the_rollout_workflow_starts_a_rollout_after_a_merge_with_real_options() -> None:
    import typer.testing

    from pipelines.cli import app

    workflow = yaml.safe_load((ROOT / "ci" / "rollout.yml").read_text())
    assert workflow[True]["push"] == {"branches": ["main"], "paths": ["contracts/**"]}
    script = next(step["run"] for step in workflow["jobs"]["start-rollouts"]["steps"] if step.get("id") == "start")
    line = next(line.strip() for line in script.splitlines() if "rollout start" in line)
    argv = shlex.split(line)[1:]
    assert argv[:3] == ["rollout", "start", "$name"]
    options = {argv[i] for i in range(3, len(argv), 2)}
    assert options == {"--to", "--from", "--stable-contract"}
    result = typer.testing.CliRunner().invoke(app, ["rollout", "start", "--help"])
    assert result.exit_code == 0 and all(option in result.output for option in options)
