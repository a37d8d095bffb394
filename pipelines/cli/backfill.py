"""``feature-platform backfill``: recompute a window_end range from historical event files with the streaming SQL.

The work is in :func:`pipelines.jobs.backfill.backfill_contracts` (Flink batch mode, same generated SQL, the
range ``[--from, --to)`` of each contract's Delta table replaced in one commit); this module shows progress on stderr
and prints the summary (``--json`` on stdout). Exit code 1 when the Flink job fails (nothing committed) or when an
input line was neither accepted nor dead-lettered.
"""

from __future__ import annotations

import json
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from pipelines.cli.console import ClusterOption, cluster_settings, console, parse_instant, progress_printer


def backfill_command(
    start: Annotated[str, typer.Option("--from", help="First window_end to recompute (ISO 8601, UTC if no offset).")],
    end: Annotated[str, typer.Option("--to", help="Window ends before this instant are recomputed (exclusive).")],
    contract_name: Annotated[str | None, typer.Option("--contract", help="Contract name or <name>_v<major> "
                                                                         "(default: every contract).")] = None,
    events: Annotated[Path | None, typer.Option(help="Folder with one sub-folder of JSON-lines files per source "
                                                     "(default: the data folder's events).")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the summary as JSON on stdout.")] = False,
    cluster: ClusterOption = None,
) -> None:
    """Recompute [--from, --to) with the streaming SQL in Flink batch mode; replace that range in Delta."""
    from pipelines.jobs.backfill import backfill_contracts
    from pipelines.resources import peak_memory_mib

    first, last = parse_instant(start, "--from"), parse_instant(end, "--to")
    with nullcontext() if json_output else console.status("[bold]backfill[/bold] …", spinner="dots"):
        summary = backfill_contracts(cluster_settings(cluster), start=first, end=last, contract=contract_name,
                                     events_dir=events, progress=progress_printer(json_output))

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
