"""Fixtures the compute-job tests share."""

from __future__ import annotations

import pytest

from pipelines.config import PROJECT_ROOT
from pipelines.contracts.load import load_contract
from pipelines.contracts.model import Contract


@pytest.fixture(scope="module")
def contract() -> Contract:
    """``user_txn_stats``: the contract of the crash tests (a module defining its own ``contract`` overrides this)."""
    return load_contract(PROJECT_ROOT / "contracts" / "user_txn_stats.yaml").contract
