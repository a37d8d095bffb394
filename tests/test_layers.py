"""The layers run one way, and the checks that say so can fail.

``lint-imports`` checks the layers contract in pyproject.toml; ruff's banned-api rule keeps ``deltalake`` inside
``pipelines/delta/``. Each is run on the real tree (must pass) and on a copy with one planted violation (must fail and
name it), so a contract that silently checks nothing would be caught.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from pipelines.config import PROJECT_ROOT

BIN = Path(sys.executable).parent


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "lint-imports"), "--no-cache"], cwd=root, capture_output=True, text=True,
                          timeout=120, check=False, env={"PATH": str(BIN), "PYTHONPATH": str(root)})


def _copy_project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    shutil.copytree(PROJECT_ROOT / "pipelines", root / "pipelines", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(PROJECT_ROOT / "pyproject.toml", root / "pyproject.toml")
    return root


def test_every_layer_imports_only_downward() -> None:
    result = _lint_imports(PROJECT_ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


def test_an_upward_import_breaks_the_layers_contract(tmp_path: Path) -> None:
    root = _copy_project(tmp_path)
    contract_model = root / "pipelines" / "contracts" / "model.py"
    contract_model.write_text(contract_model.read_text() + "\nfrom pipelines.jobs import compute  # planted\n")
    result = _lint_imports(root)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "pipelines.contracts.model -> pipelines.jobs.compute" in result.stdout


def test_the_runtime_imports_nothing_of_the_platform(tmp_path: Path) -> None:
    root = _copy_project(tmp_path)
    retry = root / "pipelines" / "runtime" / "retry.py"
    retry.write_text(retry.read_text() + "\nfrom pipelines import errors  # planted\n")
    result = _lint_imports(root)
    assert result.returncode == 1 and "pipelines.runtime.retry -> pipelines.errors" in result.stdout, result.stdout


def test_deltalake_is_imported_only_inside_the_delta_package(tmp_path: Path) -> None:
    clean = subprocess.run([str(BIN / "ruff"), "check", "--select", "TID251", "pipelines", "tests", "benchmarks"],
                           cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert clean.returncode == 0, clean.stdout
    root = _copy_project(tmp_path)
    planted = root / "pipelines" / "feast_sync" / "planted.py"
    planted.write_text('"""Planted."""\n\nfrom deltalake import DeltaTable\n\n__all__ = ["DeltaTable"]\n')
    allowed = root / "pipelines" / "delta" / "planted.py"
    allowed.write_text(planted.read_text())
    result = subprocess.run([str(BIN / "ruff"), "check", "--select", "TID251", "pipelines"], cwd=root,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 1
    assert "pipelines/feast_sync/planted.py" in result.stdout and "TID251" in result.stdout
    assert "pipelines/delta/planted.py" not in result.stdout
