"""``feature-platform backfill``: recompute a window_end range from historical event files with the streaming SQL.

The work is in :func:`pipelines.flink.backfill.run_backfill` (Flink batch mode, same generated SQL, the range
``[--from, --to)`` of each contract's Delta table replaced in one commit); this module picks the contracts and the
event folders, shows progress on stderr and prints the summary (``--json`` on stdout). Exit code 1 when the Flink job
fails (nothing committed) or when an input line was neither accepted nor dead-lettered.
"""

from __future__ import annotations

import json
import sys
from contextlib import nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

console = Console(stderr=True, width=None if sys.stderr.isatty() else 160)


def _instant(text: str, option: str) -> datetime:
    """An ISO 8601 instant; one without an offset is read as UTC (window bounds are UTC)."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not an ISO 8601 time (e.g. 2026-01-01T00:00:00Z)",
                                 param_hint=option) from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _contracts(contracts_dir: Path, name: str | None) -> list[Any]:
    from pipelines.contracts.check import check_contracts
    from pipelines.contracts.load import load_contract

    reports = check_contracts([contracts_dir])
    errors = [finding for report in reports for finding in report.errors]
    if errors:
        for finding in errors:
            console.print(finding.render(), markup=False, highlight=False)
        console.print(f"[red]{len(errors)} error(s) in the contracts; run `feature-check {contracts_dir}`[/red]")
        raise typer.Exit(1)
    contracts = [load_contract(report.file).contract for report in reports]
    if name is None:
        if not contracts:
            console.print(f"[red]no contracts found under {contracts_dir}[/red]")
            raise typer.Exit(1)
        return contracts
    chosen = [c for c in contracts if name in (c.name, c.table_name)]
    if not chosen:
        known = ", ".join(sorted(c.table_name for c in contracts))
        raise typer.BadParameter(f"no contract {name!r}; known: {known}", param_hint="--contract")
    return chosen


def _event_folders(events_dir: Path, sources: set[str]) -> dict[str, Path]:
    """``<events>/<source>`` for every source (the layout `feature-platform run` writes)."""
    folders = {source: events_dir / source for source in sorted(sources)}
    missing = [str(path) for path in folders.values() if not path.exists()]
    if missing:
        raise typer.BadParameter(f"no event files for source folder(s): {', '.join(missing)}", param_hint="--events")
    return folders


def backfill_command(
    start: Annotated[str, typer.Option("--from", help="First window_end to recompute (ISO 8601, UTC if no offset).")],
    end: Annotated[str, typer.Option("--to", help="Window ends before this instant are recomputed (exclusive).")],
    contract_name: Annotated[str | None, typer.Option("--contract", help="Contract name or <name>_v<major> "
                                                                         "(default: every contract).")] = None,
    events: Annotated[Path | None, typer.Option(help="Folder with one sub-folder of JSON-lines files per source "
                                                     "(default: the data folder's events).")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the summary as JSON on stdout.")] = False,
) -> None:
    """Recompute [--from, --to) with the streaming SQL in Flink batch mode; replace that range in Delta."""
    from pipelines.config import get_settings
    from pipelines.flink.backfill import run_backfill
    from pipelines.flink.job import FlinkJobError
    from pipelines.resources import peak_memory_mib

    first, last = _instant(start, "--from"), _instant(end, "--to")
    if first >= last:
        raise typer.BadParameter(f"--from {start} is not before --to {end}", param_hint="--from")
    settings = get_settings()
    contracts = _contracts(settings.contracts_dir, contract_name)
    folders = _event_folders(events or settings.events_dir, {c.source.name for c in contracts})

    def say(message: str) -> None:
        if not json_output:
            console.print(f"  [dim]{message}[/dim]", markup=True, highlight=False)

    try:
        with nullcontext() if json_output else console.status("[bold]backfill[/bold] …", spinner="dots"):
            summary = run_backfill(contracts, folders, settings, start=first, end=last, progress=say)
    except FlinkJobError as error:
        console.print("[red]the Flink batch job failed; nothing was committed to Delta.[/red]")
        console.print(str(error), markup=False, highlight=False)
        raise typer.Exit(1) from None

    result = {**summary.to_dict(), "peak_memory_mib": peak_memory_mib()}
    if json_output:
        sys.stdout.write(json.dumps(result, indent=2, default=str) + "\n")
    else:
        _print(result)
    if not summary.balanced:
        console.print("[red]some input lines were neither counted nor dead-lettered[/red]")
        raise typer.Exit(1)


def _print(result: dict[str, Any]) -> None:
    table = Table(title=f"backfill window_end in [{result['start']}, {result['end']})", title_justify="left")
    for name in ("table", "rows written", "rows replaced", "outside range", "dead letters", "delta version"):
        table.add_column(name, justify="left" if name == "table" else "right")
    for row in result["tables"]:
        counts = (row["rows_written"], row["rows_replaced"], row["rows_outside_range"],
                  sum(row["dead_letters"].values()))
        table.add_row(row["table"], *(f"{count:,}" for count in counts), str(row["delta_version"]))
    console.print(table)
    if any(row["reaches_newest_window"] for row in result["tables"]):
        console.print("[yellow]the range reaches the newest windows: run `feature-platform materialize` to refresh "
                      "the online store[/yellow]")
    console.print(f"elapsed {result['elapsed_seconds']:.1f}s (flink {result['flink_seconds']:.1f}s, commit "
                  f"{result['commit_seconds']:.1f}s)")
