"""What every `feature-platform` command shares: the stderr console, ISO instants, valid contracts, picking one.

Progress and tables go to stderr so that ``--json`` output on stdout stays parseable; wide tables when piped to a log.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import typer
from rich.console import Console

from pipelines.contracts.check import check_contracts
from pipelines.contracts.load import load_contract
from pipelines.contracts.model import Contract

console = Console(stderr=True, width=None if sys.stderr.isatty() else 160)

T = TypeVar("T")


def parse_instant(text: str, option: str) -> datetime:
    """An ISO 8601 instant as UTC; one without an offset is read as UTC (window bounds and Delta are UTC)."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not an ISO 8601 time (e.g. 2026-01-01T00:00:00Z)",
                                 param_hint=option) from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def load_valid_contracts(contracts_dir: Path) -> list[Contract]:
    """Every contract under ``contracts_dir``; any error is printed with its location and stops the command."""
    reports = check_contracts([contracts_dir])
    errors = [finding for report in reports for finding in report.errors]
    if errors:
        for finding in errors:
            console.print(finding.render(), markup=False, highlight=False)
        console.print(f"[red]{len(errors)} error(s) in the contracts; run `feature-check {contracts_dir}`[/red]")
        raise typer.Exit(1)
    if not reports:
        console.print(f"[red]no contracts found under {contracts_dir}[/red]")
        raise typer.Exit(1)
    return [load_contract(report.file).contract for report in reports]


def select_contracts(items: Sequence[T], name: str | None, contract_of: Callable[[T], Contract]) -> list[T]:
    """All items, or those whose contract is ``name`` (by contract name or table name, e.g. ``user_txn_stats_v1``)."""
    if name is None:
        return list(items)
    chosen = [item for item in items if name in (contract_of(item).name, contract_of(item).table_name)]
    if not chosen:
        known = ", ".join(sorted(contract_of(item).table_name for item in items))
        raise typer.BadParameter(f"no contract {name!r}; known: {known}", param_hint="--contract")
    return chosen
