"""``feature-platform materialize``: reload the online store from the Delta tables, for any event-time range.

The work is :func:`pipelines.jobs.materialize.run_materialize`; this module renders a progress bar per table (stderr)
and the summary (``--json`` on stdout).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from pipelines.cli.console import console, parse_instant, progress_printer


def materialize_command(
    contract_name: Annotated[str | None, typer.Option("--contract", help="Contract name or <name>_v<major> "
                                                                         "(default: every contract).")] = None,
    start: Annotated[str | None, typer.Option(help="Earliest window_end to load (ISO 8601; default: none).")] = None,
    end: Annotated[str | None, typer.Option(help="Latest window_end to load (ISO 8601; default: none).")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print a summary as JSON on stdout.")] = False,
) -> None:
    """Reload the online store from Delta (newest value per entity), optionally for an event-time range."""
    from pipelines.config import get_settings
    from pipelines.jobs.materialize import run_materialize

    first = parse_instant(start, "--start") if start is not None else None
    last = parse_instant(end, "--end") if end is not None else None
    settings = get_settings()
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, disable=json_output) as bars:

        def table_progress(table: str) -> Callable[[int, int], None]:
            task = bars.add_task(f"{table} → {settings.online_store}", total=None)
            return lambda done, total: bars.update(task, completed=done, total=total)

        summary = run_materialize(settings, contract=contract_name, start=first, end=last,
                                  progress=progress_printer(json_output), table_progress=table_progress)
    if json_output:
        sys.stdout.write(json.dumps(summary.to_dict(), indent=2) + "\n")
        return
    for r in summary.results:
        console.print(f"[green]✓[/green] {r.table_name}: {r.rows_loaded:,} entities from Delta version "
                      f"{r.delta_version} ({r.rows_written:,} written, {r.rows_skipped:,} kept newer) "
                      f"[dim]{r.rows_per_second:,.0f} rows/s[/dim]")
