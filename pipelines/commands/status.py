"""``feature-platform status``: what is in Delta and where the newest run stands, from Delta and the commit ledger only.

Reads no Flink state and starts no JVM: per contract table its version, row count and contract properties; per
source its dead-letter table with counts by contract and reason; for the newest run its attempts (restored from which
checkpoint), batches committed and pending, whether Flink finished, the last watermark and its lag, and the ``txn``
version each table holds for the run. ``--json`` prints it on stdout, ``--prometheus`` as Prometheus text.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer


def collect_status(settings: Any) -> dict[str, Any]:
    """The status as JSON-ready data (library function: returns, never prints)."""
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    from pipelines.contracts.load import load_contract
    from pipelines.delta import dead_letters
    from pipelines.delta.bookkeeping import Ledger

    contracts = []
    for path in sorted(Path(settings.contracts_dir).glob("*.yaml")):
        try:
            contracts.append(load_contract(path).contract)
        except Exception:  # an invalid contract is feature-check's business; status shows what it can
            continue
    run = _newest_run(settings.flink_dir / "runs")
    app_id = f"feature-platform:{run.name}" if run else None

    def table_status(path: Path) -> dict[str, Any] | None:
        try:
            table = DeltaTable(str(path))
        except TableNotFoundError:
            return None
        import pyarrow as pa

        actions = pa.table(table.get_add_actions(flatten=True)).to_pydict()
        rows = sum(n or 0 for n in actions.get("num_records", []))
        return {"version": table.version(), "rows": rows, "properties": dict(table.metadata().configuration),
                "run_txn_version": table.transaction_version(app_id) if app_id else None}

    tables = {c.table_name: table_status(settings.delta_table_path(c.table_name)) for c in contracts}
    sources = sorted({c.source.name for c in contracts})
    dead = {}
    for source in sources:
        path = settings.delta_table_path(dead_letters.table_name(source))
        dead[dead_letters.table_name(source)] = {"source": source, "table": table_status(path),
                                                 "by_contract": dead_letters.dead_letter_counts(path)}
    run_status = None
    if run is not None:
        ledger = Ledger(run)
        state = ledger.load_state(run.name)
        records = ledger.records()
        run_status = {"run_id": run.name, "flink_finished": state.flink_finished,
                      "attempts": [vars(a) for a in state.attempts], "batches_committed": len(records),
                      "batches_pending": len(ledger.pending()), "metrics": state.metrics}
    return {"tables": tables, "dead_letter_tables": dead, "run": run_status}


def _newest_run(runs: Path) -> Path | None:
    if not runs.exists():
        return None
    candidates = [path for path in runs.iterdir() if (path / "ledger" / "run.json").exists()]
    return max(candidates, key=lambda path: (path / "ledger" / "run.json").stat().st_mtime, default=None)


def prometheus_status(status: dict[str, Any]) -> str:
    from pipelines.delta.dead_letters import prometheus_text

    counts = {d["source"]: d["by_contract"] for d in status["dead_letter_tables"].values()}
    extra = []
    for name, table in status["tables"].items():
        if table is not None:
            extra.append(("feature_platform_delta_version", "Latest Delta version of a table.", {"table": name},
                          float(table["version"])))
            extra.append(("feature_platform_delta_rows", "Rows in a Delta table.", {"table": name},
                          float(table["rows"])))
    lag = ((status.get("run") or {}).get("metrics") or {}).get("watermark_lag_s")
    if lag is not None:
        extra.append(("feature_platform_watermark_lag_seconds", "Wall clock minus the job's last watermark.",
                      {"run": status["run"]["run_id"]}, float(lag)))
    return prometheus_text(counts, extra)


def status_command(
    json_output: Annotated[bool, typer.Option("--json", help="Print the status as JSON on stdout.")] = False,
    prometheus: Annotated[bool, typer.Option("--prometheus", help="Print Prometheus metrics on stdout.")] = False,
) -> None:
    """Show Delta tables, dead letters by reason and the newest run's commit state (from Delta and the ledger)."""
    from rich.console import Console
    from rich.table import Table

    from pipelines.config import get_settings

    status = collect_status(get_settings())
    if json_output:
        sys.stdout.write(json.dumps(status, indent=2, default=str) + "\n")
        return
    if prometheus:
        sys.stdout.write(prometheus_status(status))
        return
    console = Console(stderr=True)
    table = Table(title="delta tables", title_justify="left")
    for column in ("table", "version", "rows", "run txn version", "contract version"):
        table.add_column(column)
    for name, info in {**status["tables"], **{k: v["table"] for k, v in status["dead_letter_tables"].items()}}.items():
        if info is None:
            table.add_row(name, "-", "-", "-", "-")
            continue
        table.add_row(name, str(info["version"]), f"{info['rows']:,}", str(info["run_txn_version"]),
                      info["properties"].get("feature_platform.contract.version", ""))
    console.print(table)
    for name, info in status["dead_letter_tables"].items():
        for contract, reasons in info["by_contract"].items():
            console.print(f"{name} · {contract}: " + ", ".join(f"{r} {n}" for r, n in reasons.items()))
    run = status["run"]
    if run:
        lag = run["metrics"].get("watermark_lag_s")
        console.print(f"run {run['run_id']}: {len(run['attempts'])} attempt(s), {run['batches_committed']} batch(es) "
                      f"committed, {run['batches_pending']} pending, flink finished: {run['flink_finished']}, "
                      f"watermark lag: {lag if lag is not None else 'n/a'} s")
