"""What a compute run did, over every attempt of it: rows and versions per table, accepted events, dead letters.

Built from the commit ledger's done records (:func:`summarise`), so a run resumed after a crash reports the whole run,
not just its last attempt. ``balanced`` is the completeness proof: accepted events + dead letters == input lines.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipelines.config import Settings
from pipelines.contracts.model import Contract
from pipelines.delta import dead_letters
from pipelines.delta.ledger import BatchRecord, Ledger
from pipelines.delta.tables import table_version
from pipelines.jobs.run_state import FlinkAttempt, RunState


@dataclass(frozen=True)
class TableRun:
    """The outcome for one contract (one Delta table), over every attempt of the run."""

    table: str
    source: str
    rows_written: int
    delta_version: int | None
    events_accepted: int
    dead_letters: Mapping[str, int]
    input_lines: int

    @property
    def events_read(self) -> int:
        """Lines the job accounted for: accepted into windows plus dead letters."""
        return self.events_accepted + sum(self.dead_letters.values())

    @property
    def balanced(self) -> bool:
        """True when no line vanished: accepted + dead letters == lines in the input."""
        return self.events_read == self.input_lines


@dataclass(frozen=True)
class DeadLetterTableRun:
    """One source's dead-letter table: rows this run committed to it, by contract and reason, and its version."""

    table: str
    source: str
    rows_written: int
    delta_version: int | None
    by_contract: Mapping[str, Mapping[str, int]]


@dataclass(frozen=True)
class RunSummary:
    """What a run did (every attempt of it), for the CLI to render."""

    run_dir: Path
    job_id: str | None
    tables: tuple[TableRun, ...]
    input_lines: Mapping[str, int]
    flink_seconds: float
    commit_seconds: float
    elapsed_seconds: float
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    run_id: str = ""
    dead_letter_tables: tuple[DeadLetterTableRun, ...] = ()
    attempts: tuple[FlinkAttempt, ...] = ()
    batches: int = 0
    metrics: Mapping[str, Any] = field(default_factory=dict)  # last Flink sample: lines read, watermark, lag

    @property
    def balanced(self) -> bool:
        return all(table.balanced for table in self.tables)

    @property
    def resumed(self) -> bool:
        return len(self.attempts) > 1

    def to_dict(self) -> dict[str, Any]:
        """The summary as JSON-ready data (``feature-platform run --json``)."""
        return {
            "run_id": self.run_id,
            "ok": self.balanced,
            "input_lines": dict(self.input_lines),
            "events_read": {t.table: t.events_read for t in self.tables},
            "events_accepted": {t.table: t.events_accepted for t in self.tables},
            "rows_written": {t.table: t.rows_written for t in self.tables},
            "delta_versions": {t.table: t.delta_version for t in self.tables},
            "dead_letters": {t.table: dict(t.dead_letters) for t in self.tables},
            "dead_letter_tables": {d.table: {"source": d.source, "rows_written": d.rows_written,
                                             "delta_version": d.delta_version,
                                             "by_contract": {k: dict(v) for k, v in d.by_contract.items()}}
                                   for d in self.dead_letter_tables},
            "watermark_lag_s": self.metrics.get("watermark_lag_s"),
            "watermark_ms": self.metrics.get("watermark_ms"),
            "batches": self.batches,
            "attempts": [{"number": a.number, "restored_from": a.restored_from, "job_id": a.job_id,
                          "source_records_read": a.source_records_read} for a in self.attempts],
            "flink_seconds": round(self.flink_seconds, 2),
            "commit_seconds": round(self.commit_seconds, 2),
        }


def summarise(contracts: Sequence[Contract], settings: Settings, ledger: Ledger, state: RunState,
               input_lines: Mapping[str, int], run_dir: Path, job_id: str | None, flink_seconds: float,
               commit_seconds: float, elapsed: float) -> RunSummary:
    records = ledger.records()
    per_table = _per_table(records)
    tables = []
    for contract in contracts:
        rows, accepted, version, _ = per_table.get(contract.table_name, (0, 0, None, {}))
        reasons: Counter[str] = Counter()
        for record in records:
            for commit in record.tables:
                reasons.update(commit.dead_letters.get(contract.table_name, {}))
        tables.append(TableRun(table=contract.table_name, source=contract.source.name, rows_written=rows,
                               delta_version=version if version is not None else table_version(
                                   settings.delta_table_path(contract.table_name)),
                               events_accepted=accepted, dead_letters=dict(sorted(reasons.items())),
                               input_lines=input_lines[contract.source.name]))
    dead = []
    for source in sorted({c.source.name for c in contracts}):
        name = dead_letters.table_name(source)
        rows, _, version, by_contract = per_table.get(name, (0, 0, None, {}))
        dead.append(DeadLetterTableRun(name, source, rows, version if version is not None else table_version(
            settings.delta_table_path(name)), by_contract))
    return RunSummary(run_dir=run_dir, job_id=job_id or (state.attempts[-1].job_id if state.attempts else None),
                      tables=tuple(tables), input_lines=dict(input_lines), flink_seconds=flink_seconds,
                      commit_seconds=commit_seconds, elapsed_seconds=elapsed, run_id=state.run_id,
                      dead_letter_tables=tuple(dead), attempts=tuple(state.attempts), batches=len(records),
                      metrics=dict(state.metrics))


def _per_table(records: Sequence[BatchRecord]) -> dict[str, tuple[int, int, int | None, dict[str, dict[str, int]]]]:
    """Per table: rows, accepted events, last version written, dead letters by contract and reason."""
    totals: dict[str, tuple[int, int, int | None, dict[str, dict[str, int]]]] = {}
    for record in records:
        for commit in record.tables:
            rows, accepted, version, by_contract = totals.get(commit.table, (0, 0, None, {}))
            for contract, reasons in commit.dead_letters.items():
                merged = Counter(by_contract.get(contract, {}))
                merged.update(reasons)
                by_contract[contract] = dict(sorted(merged.items()))
            newest = commit.version if commit.version is not None else version
            totals[commit.table] = (rows + commit.rows, accepted + commit.events_accepted, newest, by_contract)
    return totals
