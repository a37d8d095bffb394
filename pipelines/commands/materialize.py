"""``feature-platform materialize``: reload the online store from the Delta tables, for any event-time range.

The recovery path (an online store that was wiped, restored from an old backup, or pointed at a new Redis): for each
contract (or the one named), the newest row per entity of the Delta snapshot, restricted to ``window_end`` in
``[--start, --end]`` when given, is written through the ``online-load`` stage (rate limit and concurrency from
``settings.stage("online-load")``). Unlike Feast's ``materialize-incremental`` nothing starts at "now − TTL": without
bounds the whole table is reloaded and the store then equals the snapshot; with bounds values only ever move forward.
The work is in :func:`pipelines.feast_sync.online.materialize`; this module renders progress (stderr) and ``--json``.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from pipelines.commands.common import console, parse_instant, select_contracts


def materialize_command(
    contract_name: Annotated[str | None, typer.Option("--contract", help="Contract name or <name>_v<major> "
                                                                         "(default: every contract).")] = None,
    start: Annotated[str | None, typer.Option(help="Earliest window_end to load (ISO 8601; default: none).")] = None,
    end: Annotated[str | None, typer.Option(help="Latest window_end to load (ISO 8601; default: none).")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print a summary as JSON on stdout.")] = False,
) -> None:
    """Reload the online store from Delta (newest value per entity), optionally for an event-time range."""
    from pipelines.config import get_settings
    from pipelines.contracts.load import ContractLoadError
    from pipelines.feast_sync.online import OnlineLoadError, materialize, open_online_store
    from pipelines.feast_sync.online_writers import UnsupportedOnlineStoreError
    from pipelines.feast_sync.repo import RepoDefinitionError, contracts_with_delta_paths
    from pipelines.feast_sync.store import apply_repo, is_applied
    from pipelines.runtime import StageError

    started = time.perf_counter()
    first = parse_instant(start, "--start") if start is not None else None
    last = parse_instant(end, "--end") if end is not None else None
    if first is not None and last is not None and first > last:
        raise typer.BadParameter(f"--start {start} is after --end {end}", param_hint="--start")
    settings = get_settings()
    results = []
    try:
        contracts = contracts_with_delta_paths(settings)
        chosen = select_contracts(contracts, contract_name, lambda item: item[0])
        store = open_online_store(settings)
        if not is_applied(store, contracts):
            apply_repo(store, contracts)
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=console, disable=json_output) as progress:
            for contract, path in chosen:
                if not path.exists():
                    console.print(f"[yellow]{contract.table_name}: no Delta table at {path}; skipped[/yellow]")
                    continue
                task = progress.add_task(f"{contract.table_name} → {settings.online_store}", total=None)

                def advance(done: int, total: int, task: Any = task) -> None:
                    progress.update(task, completed=done, total=total)

                results.append(materialize(store, contract, path, start=first, end=last, progress=advance))
    except (ContractLoadError, RepoDefinitionError, UnsupportedOnlineStoreError, OnlineLoadError,
            StageError) as error:
        console.print(f"[red]materialize: {error}[/red]", highlight=False)
        raise typer.Exit(1) from None
    summary = {
        "online_store": settings.online_store,
        "start": first.isoformat() if first else None,
        "end": last.isoformat() if last else None,
        "tables": [{"table": r.table_name, "delta_version": r.delta_version, "rows_in_range": r.snapshot_rows,
                    "entities": r.rows_loaded, "written": r.rows_written, "kept_newer": r.rows_skipped,
                    "rows_per_second": round(r.rows_per_second), "restarts": r.restarts} for r in results],
        "elapsed_seconds": round(time.perf_counter() - started, 3),
    }
    if json_output:
        sys.stdout.write(json.dumps(summary, indent=2) + "\n")
        return
    for r in results:
        console.print(f"[green]✓[/green] {r.table_name}: {r.rows_loaded:,} entities from Delta version "
                      f"{r.delta_version} ({r.rows_written:,} written, {r.rows_skipped:,} kept newer) "
                      f"[dim]{r.rows_per_second:,.0f} rows/s[/dim]")
