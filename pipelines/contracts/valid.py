"""The one way every command loads contracts: every file under a folder, located, with every semantic rule checked.

``run``, ``backfill``, ``materialize``, ``training-set``, ``status`` and the Feast repository all call
:func:`load_valid_contracts`, so a contract that ``feature-check`` refuses is refused everywhere, with the same
file names (``*.yaml`` and ``*.yml``, hidden files skipped) and the same ``file:line:col`` findings. Warnings do not
block; any error raises :class:`~pipelines.contracts.load.ContractLoadError` carrying every error found.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from pipelines.contracts.check import check_contracts_loaded
from pipelines.contracts.load import ContractLoadError, LoadedContract
from pipelines.contracts.model import Contract
from pipelines.errors import UsageError

T = TypeVar("T")


def load_valid_loaded(contracts_dir: Path) -> list[LoadedContract]:
    """Every contract under ``contracts_dir`` with its positions; raises when any has an error or there is none."""
    if not Path(contracts_dir).exists():
        raise UsageError(f"no contracts folder {contracts_dir}", hint="set FP_CONTRACTS_DIR or create the folder")
    reports, loaded = check_contracts_loaded([contracts_dir])
    errors = [finding for report in reports for finding in report.errors]
    if errors:
        raise ContractLoadError(errors)
    if not loaded:
        raise UsageError(f"no contracts (*.yaml, *.yml) under {contracts_dir}",
                         hint="add a contract; docs/contracts.md describes the format")
    return loaded


def load_valid_contracts(contracts_dir: Path) -> list[Contract]:
    """Every contract under ``contracts_dir``, valid by every rule ``feature-check`` applies (see module docstring)."""
    return [entry.contract for entry in load_valid_loaded(contracts_dir)]


def select_contracts(items: Sequence[T], name: str | None, contract_of: Callable[[T], Contract]) -> list[T]:
    """All items, or those whose contract is ``name`` (by contract name or table name, e.g. ``user_txn_stats_v1``)."""
    if name is None:
        return list(items)
    chosen = [item for item in items if name in (contract_of(item).name, contract_of(item).table_name)]
    if not chosen:
        known = ", ".join(sorted(contract_of(item).table_name for item in items))
        raise UsageError(f"no contract {name!r}; known: {known}", hint="pass --contract with one of those")
    return chosen
