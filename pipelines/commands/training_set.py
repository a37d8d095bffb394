"""``feature-platform training-set``: a point-in-time-correct training set for one contract, from its Delta table.

Reads an entity file (the contract's join keys, a timestamp per row, any label columns), joins every feature of the
contract as of each row's timestamp through Feast's ``get_historical_features`` on the Delta offline store, and writes
the result as Parquet or CSV. The work is in :mod:`pipelines.feast_sync.training`; this module wires it to the store
and renders progress (stderr) and the ``--json`` summary (stdout).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from pipelines.commands.common import console


def _pick_contract(name: str, contracts: list[Any]) -> Any:
    """The contract called ``name`` (its only major version) or ``<name>_v<major>``; errors list what exists."""
    by_table = {c.table_name: c for c, _ in contracts}
    if name in by_table:
        return by_table[name]
    majors = [c for c, _ in contracts if c.name == name]
    if len(majors) == 1:
        return majors[0]
    if majors:
        raise typer.BadParameter(f"{name} has several major versions: pick one of "
                                 f"{', '.join(sorted(c.table_name for c in majors))}", param_hint="--contract")
    raise typer.BadParameter(f"no contract {name!r}; known: {', '.join(sorted(by_table))}", param_hint="--contract")


def training_set_command(
    entities: Annotated[Path, typer.Option("--entities", help="Entity rows: join keys, timestamp (.csv|.parquet).")],
    contract_name: Annotated[str, typer.Option("--contract", help="Contract name, or <name>_v<major>.")],
    out: Annotated[Path, typer.Option("--out", help="Where to write the training set (.parquet or .csv).")],
    timestamp_column: Annotated[str, typer.Option(help="The entity file's timestamp column.")] = "event_timestamp",
    json_output: Annotated[bool, typer.Option("--json", help="Print a summary as JSON on stdout.")] = False,
) -> None:
    """Write a point-in-time-correct training set: each row gets the features as they were at its timestamp."""
    from pipelines.config import get_settings
    from pipelines.contracts.load import ContractLoadError
    from pipelines.feast_sync.repo import RepoDefinitionError, contracts_with_delta_paths
    from pipelines.feast_sync.store import apply_repo, is_applied, open_store
    from pipelines.feast_sync.training import (
        TrainingSetError,
        build_training_set,
        read_entity_file,
        write_training_set,
    )

    started = time.perf_counter()
    settings = get_settings()
    try:
        contracts = contracts_with_delta_paths(settings)
        contract = _pick_contract(contract_name, contracts)
        frame = read_entity_file(entities, text_columns=contract.entity.join_keys)
        store = open_store(settings)
        if not is_applied(store, contracts):
            applied = apply_repo(store, contracts)
            if not json_output:
                console.print(f"[dim]feast: registry updated from the contracts ({len(applied.changes)} change(s))"
                              f"[/dim]")
        with console.status(f"joining {len(frame):,} entity rows with {contract.table_name} …", spinner="dots"):
            result = build_training_set(store, contract, frame, timestamp_column=timestamp_column)
        written = write_training_set(result.table, out)
    except (TrainingSetError, ContractLoadError, RepoDefinitionError) as error:
        console.print(f"[red]training-set: {error}[/red]", highlight=False)
        raise typer.Exit(1) from None
    summary = {
        "contract": contract.name,
        "feature_view": contract.table_name,
        "delta_version": result.delta_version,
        "rows": result.rows,
        "features": list(result.feature_names),
        "null_counts": result.null_counts(),
        "ttl_seconds": contract.serving.ttl.total_seconds(),
        "out": str(written.resolve()),
        "join_seconds": round(result.elapsed_seconds, 3),
        "elapsed_seconds": round(time.perf_counter() - started, 3),
    }
    if json_output:
        sys.stdout.write(json.dumps(summary, indent=2) + "\n")
    else:
        console.print(f"[green]✓[/green] {result.rows:,} rows × {len(result.feature_names)} features of "
                      f"{contract.table_name} (Delta version {result.delta_version}) → {written} "
                      f"[dim]({summary['elapsed_seconds']:.1f}s)[/dim]")
