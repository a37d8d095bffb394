"""`feature-platform`: usage, and a bad contract stopping the main job before any work, with file:line."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMMAND = str(Path(sys.executable).with_name("feature-platform"))


def test_help_lists_the_run_command() -> None:
    result = subprocess.run([COMMAND, "--help"], capture_output=True, text=True, check=False)
    assert result.returncode == 0
    assert "run" in result.stdout


@pytest.mark.e2e  # starts `feature-platform run` in a subprocess
def test_an_invalid_contract_stops_the_run_with_its_location(tmp_path: Path) -> None:
    contracts = tmp_path / "contracts"
    contracts.mkdir()
    text = (ROOT / "contracts" / "user_txn_stats.yaml").read_text().replace("aggregation: avg", "aggregation: mean")
    (contracts / "user_txn_stats.yaml").write_text(text)
    shutil.copy(ROOT / "contracts" / "merchant_risk_profile.yaml", contracts)
    env = {**os.environ, "FP_CONTRACTS_DIR": str(contracts), "FP_DATA_DIR": str(tmp_path / "data")}
    result = subprocess.run([COMMAND, "run", "--events", "10"], capture_output=True, text=True, env=env, check=False,
                            timeout=120)
    line = text.splitlines().index("    aggregation: mean") + 1
    assert result.returncode == 1
    assert f"user_txn_stats.yaml:{line}:18: error [invalid-value] features[3].aggregation" in result.stderr
    assert not (tmp_path / "data" / "events").exists(), "nothing may run before the contracts are valid"


def test_health_refuses_a_bad_as_of_with_exit_2() -> None:
    result = subprocess.run([COMMAND, "health", "--as-of", "yesterday"], capture_output=True, text=True, check=False,
                            timeout=120)
    assert result.returncode == 2, result.stderr
    assert "is not an ISO 8601 time" in result.stderr and "Traceback" not in result.stderr
