"""``feature-platform training-set``: a point-in-time-correct training set for one contract, from its Delta table.

The work is :func:`pipelines.jobs.training_set.run_training_set`; this module renders progress (stderr) and the
``--json`` summary (stdout).
"""

from __future__ import annotations

import json
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Annotated

import typer

from pipelines.cli.console import console, progress_printer


def training_set_command(
    entities: Annotated[Path, typer.Option("--entities", help="Entity rows: join keys, timestamp (.csv|.parquet).")],
    contract_name: Annotated[str, typer.Option("--contract", help="Contract name, or <name>_v<major>.")],
    out: Annotated[Path, typer.Option("--out", help="Where to write the training set (.parquet or .csv).")],
    timestamp_column: Annotated[str, typer.Option(help="The entity file's timestamp column.")] = "event_timestamp",
    json_output: Annotated[bool, typer.Option("--json", help="Print a summary as JSON on stdout.")] = False,
) -> None:
    """Write a point-in-time-correct training set: each row gets the features as they were at its timestamp."""
    from pipelines.config import get_settings
    from pipelines.jobs.training_set import run_training_set

    with nullcontext() if json_output else console.status("training set …", spinner="dots"):
        summary = run_training_set(get_settings(), entities=entities, contract=contract_name, out=out,
                                   timestamp_column=timestamp_column, progress=progress_printer(json_output))
    if json_output:
        sys.stdout.write(json.dumps(summary.to_dict(), indent=2) + "\n")
        return
    result = summary.result
    console.print(f"[green]✓[/green] {result.rows:,} rows × {len(result.feature_names)} features of "
                  f"{summary.contract.table_name} (Delta version {result.delta_version}) → {summary.out} "
                  f"[dim]({summary.elapsed_seconds:.1f}s)[/dim]")
