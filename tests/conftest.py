"""Fixtures shared by every test folder: Settings on a temporary data folder and the project's own contracts.

Folder-specific fixtures and helpers stay in the folder's ``conftest.py`` (tests import those with
``from conftest import ...``). This file is not importable that way from a folder with a conftest of its own (every
``conftest.py`` outside a package is the module ``conftest``): use its fixtures.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
from collections.abc import Callable
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType

import pytest

from pipelines.config import PROJECT_ROOT, Settings
from pipelines.contracts.load import LoadedContract, load_contract
from pipelines.contracts.model import Contract

#: Test modules that moved, by their old import path: tests/e2e/test_restore_twice.py and
#: tests/flink/test_dead_letters.py still import helpers from ``tests.e2e.*``. Drop an entry once nothing imports the
#: old path.
MOVED_TEST_MODULES = {
    "tests.e2e.test_flink_vs_reference": "tests.jobs.test_flink_vs_reference",
    "tests.e2e.test_crash_recovery": "tests.jobs.test_crash_recovery",
}


class _MovedTestModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Resolves an old import path of a moved test module to the module at its new path (the same module object)."""

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> ModuleSpec | None:
        return importlib.util.spec_from_loader(fullname, self) if fullname in MOVED_TEST_MODULES else None

    def create_module(self, spec: ModuleSpec) -> ModuleType:
        return importlib.import_module(MOVED_TEST_MODULES[spec.name])

    def exec_module(self, module: ModuleType) -> None:
        pass


if not any(isinstance(finder, _MovedTestModules) for finder in sys.meta_path):
    sys.meta_path.append(_MovedTestModules())

#: The project's example contracts (``contracts/*.yaml``).
CONTRACTS = PROJECT_ROOT / "contracts"


def load_project_contract(name: str) -> LoadedContract:
    """The project's contract ``contracts/<name>.yaml``, loaded with positions."""
    return load_contract(CONTRACTS / f"{name}.yaml")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings on a temporary data folder; contracts and the Feast repository are the project's own."""
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture(scope="session")
def project_contract() -> Callable[[str], Contract]:
    """``project_contract("user_txn_stats")`` → the project's contract of that name."""
    return lambda name: load_project_contract(name).contract


@pytest.fixture(scope="session")
def project_loaded_contract() -> Callable[[str], LoadedContract]:
    """``project_loaded_contract("user_txn_stats")`` → the project's contract with its file and positions."""
    return load_project_contract
