"""``feature-platform status``: what is in Delta and where the newest run stands, from Delta and the commit ledger only.

Reads no Flink state and starts no JVM: per contract table its version, row count and contract properties; per
source its dead-letter table with counts by contract and reason; for the newest run its attempts (restored from which
checkpoint), batches committed and pending, whether Flink finished, the last watermark and its lag, and the ``txn``
version each table holds for the run. Contracts are loaded with the one loader every command uses.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pipelines.config import Settings
from pipelines.contracts.model import Contract
from pipelines.contracts.valid import load_valid_contracts
from pipelines.delta import dead_letters
from pipelines.delta.ledger import Ledger
from pipelines.delta.tables import TableStatus, table_status
from pipelines.jobs.run_state import load_run_state, state_path


@dataclass(frozen=True)
class StatusSummary:
    """Tables, dead-letter tables and the newest run, JSON-ready through :meth:`to_dict`."""

    tables: dict[str, TableStatus | None]
    dead_letter_tables: dict[str, dict[str, Any]]
    run: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "tables": {name: t.to_dict() if t is not None else None for name, t in self.tables.items()},
            "dead_letter_tables": {name: {**info, "table": info["table"].to_dict() if info["table"] else None}
                                   for name, info in self.dead_letter_tables.items()},
            "run": self.run,
        }


def collect_status(settings: Settings, contracts: list[Contract] | None = None) -> StatusSummary:
    """The status of every valid contract's tables and of the newest run (library function: returns, never prints)."""
    contracts = contracts if contracts is not None else load_valid_contracts(settings.contracts_dir)
    run = newest_run(settings.flink_dir / "runs")
    app_id = f"feature-platform:{run.name}" if run else None
    tables = {c.table_name: table_status(settings.delta_table_path(c.table_name), app_id) for c in contracts}
    dead = {}
    for source in sorted({c.source.name for c in contracts}):
        name = dead_letters.table_name(source)
        path = settings.delta_table_path(name)
        dead[name] = {"source": source, "table": table_status(path, app_id),
                      "by_contract": dead_letters.dead_letter_counts(path)}
    return StatusSummary(tables, dead, _run_status(run) if run is not None else None)


def _run_status(run: Path) -> dict[str, Any]:
    ledger = Ledger(run)
    state = load_run_state(run, run.name)
    return {"run_id": run.name, "flink_finished": state.flink_finished,
            "attempts": [asdict(a) for a in state.attempts], "batches_committed": len(ledger.records()),
            "batches_pending": len(ledger.pending()), "metrics": state.metrics}


def newest_run(runs: Path) -> Path | None:
    """The run folder whose state was written last, or None."""
    if not runs.exists():
        return None
    candidates = [path for path in runs.iterdir() if state_path(path).exists()]
    return max(candidates, key=lambda path: state_path(path).stat().st_mtime, default=None)


def prometheus_status(status: StatusSummary) -> str:
    """The status as Prometheus exposition text (dead letters by reason, table versions and rows, watermark lag)."""
    counts = {d["source"]: d["by_contract"] for d in status.dead_letter_tables.values()}
    extra = []
    for name, table in status.tables.items():
        if table is not None:
            extra.append(("feature_platform_delta_version", "Latest Delta version of a table.", {"table": name},
                          float(table.version)))
            extra.append(("feature_platform_delta_rows", "Rows in a Delta table.", {"table": name},
                          float(table.rows)))
    lag = ((status.run or {}).get("metrics") or {}).get("watermark_lag_s")
    if lag is not None and status.run is not None:
        extra.append(("feature_platform_watermark_lag_seconds", "Wall clock minus the job's last watermark.",
                      {"run": status.run["run_id"]}, float(lag)))
    return dead_letters.prometheus_text(counts, extra)
