"""``feature-platform status``: tables, dead letters by reason and the newest run's commit state.

The work is :func:`pipelines.jobs.status.collect_status` (Delta and the commit ledger only; no JVM); this module
renders it as tables (stderr), ``--json`` or ``--prometheus`` (stdout).
"""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.table import Table

from pipelines.cli.console import console


def status_command(
    json_output: Annotated[bool, typer.Option("--json", help="Print the status as JSON on stdout.")] = False,
    prometheus: Annotated[bool, typer.Option("--prometheus", help="Print Prometheus metrics on stdout.")] = False,
) -> None:
    """Show Delta tables, dead letters by reason and the newest run's commit state (from Delta and the ledger)."""
    from pipelines.config import get_settings
    from pipelines.jobs.status import collect_status, prometheus_status

    status = collect_status(get_settings())
    if json_output:
        sys.stdout.write(json.dumps(status.to_dict(), indent=2, default=str) + "\n")
        return
    if prometheus:
        sys.stdout.write(prometheus_status(status))
        return
    table = Table(title="delta tables", title_justify="left")
    for column in ("table", "version", "rows", "run txn version", "contract version"):
        table.add_column(column)
    every = {**status.tables, **{name: info["table"] for name, info in status.dead_letter_tables.items()}}
    for name, info in every.items():
        if info is None:
            table.add_row(name, "-", "-", "-", "-")
            continue
        table.add_row(name, str(info.version), f"{info.rows:,}", str(info.run_txn_version),
                      info.properties.get("feature_platform.contract.version", ""))
    console.print(table)
    for name, dead in status.dead_letter_tables.items():
        for contract, reasons in dead["by_contract"].items():
            console.print(f"{name} · {contract}: " + ", ".join(f"{r} {n}" for r, n in reasons.items()))
    run = status.run
    if run:
        lag = run["metrics"].get("watermark_lag_s")
        console.print(f"run {run['run_id']}: {len(run['attempts'])} attempt(s), {run['batches_committed']} batch(es) "
                      f"committed, {run['batches_pending']} pending, flink finished: {run['flink_finished']}, "
                      f"watermark lag: {lag if lag is not None else 'n/a'} s")
