"""Repository-level guarantees: the code is ruff-clean, and CI runs exactly the README's test command."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_ruff_clean() -> None:
    ruff = Path(sys.executable).with_name("ruff")
    result = subprocess.run([str(ruff), "check", "--no-cache", str(ROOT)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"ruff found problems:\n{result.stdout}{result.stderr}"


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    commands = re.findall(r"^(\./dev \w+)", readme, flags=re.MULTILINE)
    assert commands[:2] == ["./dev run", "./dev test"], "README must lead with the two commands"
    ci_script = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^exec \./dev test$", ci_script, flags=re.MULTILINE), ".ci/run must call exactly `./dev test`"
