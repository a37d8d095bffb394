"""``feature-check`` as CI runs it: the installed console script in a subprocess, its output, exit codes and imports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BROKEN = ROOT / "tests" / "contracts" / "broken"
SCRIPT = Path(sys.executable).with_name("feature-check")
HEAVY = ("pyflink", "feast", "great_expectations", "pandas", "pyarrow", "deltalake", "metadata", "numpy", "typer")


def feature_check(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    assert SCRIPT.exists(), f"{SCRIPT} is missing: run `uv sync --frozen` in {ROOT}"
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    return subprocess.run([str(SCRIPT), *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False,
                          env=env)


def test_examples_pass_with_exit_code_0() -> None:
    result = feature_check()
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines == [
        "✓ merchant_risk_profile 2.1.0 (contracts/merchant_risk_profile.yaml)",
        "✓ session_clickstream 0.3.0 (contracts/session_clickstream.yaml)",
        "✓ user_txn_stats 1.0.0 (contracts/user_txn_stats.yaml)",
        "3 contracts checked: 3 passed, 0 failed; 0 errors, 0 warnings",
    ]
    assert result.stderr == ""


def test_default_path_is_contracts_in_the_current_directory(tmp_path: Path) -> None:
    result = feature_check(cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == "feature-check: error: no such file or folder: contracts"


def test_invalid_contract_exits_1_with_located_findings() -> None:
    target = "tests/contracts/broken/one-step.yaml"
    result = feature_check(target, str(ROOT / "contracts" / "user_txn_stats.yaml"))
    assert result.returncode == 1
    first = result.stdout.splitlines()[0]
    assert first.startswith(f"{target}:14:69: error [one-step] features[2].window: this feature emits every 10m")
    assert "✗ broken 1.0.0 (tests/contracts/broken/one-step.yaml): 1 error" in result.stdout
    assert "✓ user_txn_stats 1.0.0" in result.stdout
    assert result.stdout.splitlines()[-1] == "2 contracts checked: 1 passed, 1 failed; 1 error, 0 warnings"


def test_warnings_alone_exit_0() -> None:
    result = feature_check("tests/contracts/broken/ttl-step.yaml")
    assert result.returncode == 0, result.stdout
    assert "warning [ttl-step] serving.ttl:" in result.stdout
    assert "✓ broken 1.0.0 (tests/contracts/broken/ttl-step.yaml): 1 warning" in result.stdout


def test_unloadable_file_is_reported_not_raised() -> None:
    result = feature_check("tests/contracts/broken/not-utf8.yaml")
    assert result.returncode == 1
    assert "✗ (not loaded) (tests/contracts/broken/not-utf8.yaml): 1 error" in result.stdout


def test_json_output_is_a_stable_document() -> None:
    result = feature_check("--format", "json", "contracts", "tests/contracts/broken/fallback-type.yaml")
    assert result.returncode == 1
    document = json.loads(result.stdout)
    assert list(document) == ["ok", "base", "contracts", "suppressed", "summary"]  # docs/feature-check.md
    assert document["ok"] is False and document["base"] is None and document["suppressed"] == []
    assert document["summary"] == {"contracts": 4, "passed": 3, "failed": 1, "errors": 1, "warnings": 0, "infos": 0,
                                   "suppressed": 0}
    by_file = {c["file"]: c for c in document["contracts"]}
    fallback = by_file["tests/contracts/broken/fallback-type.yaml"]
    assert list(fallback) == ["file", "name", "version", "ok", "findings"]
    assert fallback["findings"] == [{
        "file": "tests/contracts/broken/fallback-type.yaml", "line": 15, "column": 44,
        "yaml_path": "degradation.txn_count_5m.value", "rule": "fallback-type",
        "message": fallback["findings"][0]["message"], "severity": "error",
    }]
    assert "int64" in fallback["findings"][0]["message"]
    assert by_file["contracts/user_txn_stats.yaml"] == {"file": "contracts/user_txn_stats.yaml",
                                                        "name": "user_txn_stats", "version": "1.0.0", "ok": True,
                                                        "findings": []}


def test_json_output_for_passing_contracts_exits_0() -> None:
    result = feature_check("--format=json")
    assert result.returncode == 0
    assert json.loads(result.stdout)["ok"] is True


@pytest.mark.parametrize("args", [("--bogus",), ("--format", "xml"), ("no/such/path.yaml",),
                                  ("--data", "--as-of", "yesterday")])
def test_usage_errors_exit_2_without_traceback(args: tuple[str, ...]) -> None:
    result = feature_check(*args)
    assert result.returncode == 2
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("feature-check: error:")


def test_folder_without_contracts_exits_2(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a contract")
    result = feature_check(str(tmp_path))
    assert result.returncode == 2
    assert "no contract files" in result.stderr


def test_internal_error_is_one_line_and_exit_2() -> None:
    # Output that cannot be written (here: a full device) is a failure outside any contract.
    with Path("/dev/full").open("w") as full:
        result = subprocess.run([str(SCRIPT)], cwd=ROOT, stdout=full, stderr=subprocess.PIPE, text=True, timeout=60,
                                check=False)
    assert result.returncode == 2
    assert result.stderr.splitlines() == ["feature-check: internal error: OSError: [Errno 28] No space left on device "
                                          "(run with --debug for the traceback)"]


def test_help_exits_0() -> None:
    result = feature_check("--help")
    assert result.returncode == 0 and "Exit codes" in result.stdout


def test_no_heavy_module_is_imported() -> None:
    """Lint must stay fast: prove that nothing heavy is imported, by asking the interpreter that ran it."""
    code = ("import sys; from pipelines.feature_check.cli import run; "
            "code = run(['contracts', 'tests/contracts/broken']); "
            "print(','.join(sorted({m.split('.')[0] for m in sys.modules})))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                            check=False)
    assert result.returncode == 0, result.stderr
    loaded = set(result.stdout.strip().splitlines()[-1].split(","))
    assert "pipelines" in loaded and "pydantic" in loaded  # the probe saw the checker run
    assert loaded.isdisjoint(HEAVY), sorted(loaded & set(HEAVY))


def test_import_time_stays_small() -> None:
    result = subprocess.run([sys.executable, "-X", "importtime", "-c", "import pipelines.feature_check.cli"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60, check=False)
    imported = {line.split("|")[-1].strip().split(".")[0] for line in result.stderr.splitlines() if "|" in line}
    assert "pipelines" in imported
    assert imported.isdisjoint(HEAVY), sorted(imported & set(HEAVY))
