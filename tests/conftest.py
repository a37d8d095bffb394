"""Fixtures shared by every test folder: Settings on a temporary data folder and the project's own contracts.

Folder-specific fixtures and helpers stay in the folder's ``conftest.py`` (tests import those with
``from conftest import ...``). This file is not importable that way from a folder with a conftest of its own (every
``conftest.py`` outside a package is the module ``conftest``): use its fixtures.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from pipelines.config import PROJECT_ROOT, Settings
from pipelines.contracts.load import LoadedContract, load_contract
from pipelines.contracts.model import Contract

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
