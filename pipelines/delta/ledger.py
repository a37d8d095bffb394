"""The commit stage's write-ahead ledger: which finished part files form which batch, and which batches are committed.

Why it exists: Flink's file sink makes part files exactly-once, Delta makes each commit atomic, but the step between
them (files → commit) can crash anywhere. The ledger makes every step either repeatable or skippable:

1. **Plan** — the finished, not yet claimed part files are written to ``batch-<seq>.plan.json`` atomically (temporary
   name, fsync, rename, fsync of the folder) *before* anything is committed. ``seq`` counts up from 1 per run.
2. **Commit** — each target table gets one Delta commit carrying the ``txn`` action ``(app_id, seq)``.
3. **Done** — ``batch-<seq>.done.json`` records what each table received (rows, versions, counts for the summary).

On restart a planned batch without its done record is committed again with the same files: a table whose
``transaction_version(app_id) >= seq`` took that batch before the crash and is skipped. A crash before the
plan leaves the files unclaimed, so the next plan takes them. Nothing is lost and nothing is written twice.

:func:`crash_point` is a **test-only** hook: when ``Settings.test_crash_at`` (``FP_TEST_CRASH_AT``) names the point, the
process SIGKILLs itself there, so the crash test can stop the pipeline between exactly these two steps.
"""

from __future__ import annotations

import json
import os
import re
import signal
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

#: The points where :func:`crash_point` may fire, in the order a run passes them.
CRASH_POINTS = ("flink-running", "before-commit", "during-commit", "flink-ended", "flink-finished")

_PLAN = re.compile(r"^batch-(\d{8})\.plan\.json$")


def crash_point(point: str, crash_at: str | None) -> None:
    """TEST ONLY: SIGKILL this process when ``crash_at`` (``FP_TEST_CRASH_AT``) names ``point``; otherwise nothing."""
    if crash_at is None:
        return
    if crash_at not in CRASH_POINTS:
        raise ValueError(f"unknown crash point {crash_at!r}; expected one of {CRASH_POINTS}")
    if crash_at == point:
        os.kill(os.getpid(), signal.SIGKILL)


def write_json_atomically(path: Path, payload: Mapping[str, Any]) -> None:
    """Write ``payload`` so that ``path`` holds either nothing or the whole document, even across a power cut."""
    path.parent.mkdir(parents=True, exist_ok=True)
    hidden = path.with_name(f".{path.name}.tmp")
    with hidden.open("w", encoding="utf-8") as out:
        json.dump(payload, out, indent=1, sort_keys=True, default=str)
        out.flush()
        os.fsync(out.fileno())
    hidden.replace(path)
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


@dataclass(frozen=True)
class BatchPlan:
    """One batch: for each target table, the part files (relative to the run folder) it will receive."""

    seq: int
    files: Mapping[str, tuple[str, ...]]
    planned_at: str

    @property
    def empty(self) -> bool:
        return not any(self.files.values())


@dataclass(frozen=True)
class TableCommit:
    """What one table received from one batch (``version`` None: nothing new was written)."""

    table: str
    rows: int
    version: int | None
    skipped: bool = False
    events_accepted: int = 0
    dead_letters: Mapping[str, Mapping[str, int]] = field(default_factory=dict)  # contract table -> reason -> n


@dataclass(frozen=True)
class BatchRecord:
    """The done record of a batch."""

    seq: int
    attempt: int
    committed_at: str
    tables: tuple[TableCommit, ...]


class Ledger:
    """The bookkeeping folder of one run (``<run_dir>/ledger``). One writer at a time (the run's process)."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.folder = run_dir / "ledger"
        # The plans, read once and then kept up to date by plan() (the only writer): a continuous stream plans a
        # batch per checkpoint, and re-reading every plan file on every poll would grow without bound.
        self._plans: list[BatchPlan] | None = None

    # -------------------------------------------------------------------------------------------------- batches
    def plans(self) -> list[BatchPlan]:
        """Every planned batch, in sequence order."""
        if self._plans is None:
            self._plans = self._read_plans()
        return list(self._plans)

    def _read_plans(self) -> list[BatchPlan]:
        if not self.folder.exists():
            return []
        found = []
        for path in sorted(self.folder.iterdir()):
            if _PLAN.match(path.name):
                raw = json.loads(path.read_text(encoding="utf-8"))
                found.append(BatchPlan(raw["seq"], {k: tuple(v) for k, v in raw["files"].items()}, raw["planned_at"]))
        return found

    def records(self) -> list[BatchRecord]:
        """Every done record, in sequence order."""
        return [record for plan in self.plans() if (record := self.record(plan.seq)) is not None]

    def record(self, seq: int) -> BatchRecord | None:
        path = self.folder / f"batch-{seq:08d}.done.json"
        if not path.exists():
            return None
        raw = json.loads(path.read_text(encoding="utf-8"))
        tables = tuple(TableCommit(**table) for table in raw["tables"])
        return BatchRecord(raw["seq"], raw["attempt"], raw["committed_at"], tables)

    def pending(self) -> list[BatchPlan]:
        """Planned batches without a done record (a crash came between plan and done), in sequence order."""
        return [plan for plan in self.plans() if self.record(plan.seq) is None]

    def claimed_files(self) -> set[str]:
        return {name for plan in self.plans() for files in plan.files.values() for name in files}

    def plan(self, files: Mapping[str, Iterable[Path]]) -> BatchPlan:
        """Write the next batch's plan (files not claimed by an earlier plan) before anything is committed."""
        existing = self.plans()
        seq = existing[-1].seq + 1 if existing else 1
        relative = {table: tuple(str(path.relative_to(self.run_dir)) for path in paths)
                    for table, paths in files.items()}
        plan = BatchPlan(seq, relative, datetime.now(UTC).isoformat())
        write_json_atomically(self.folder / f"batch-{seq:08d}.plan.json", asdict(plan))
        self._plans = [*existing, plan]
        return plan

    def mark_done(self, record: BatchRecord) -> None:
        write_json_atomically(self.folder / f"batch-{record.seq:08d}.done.json", asdict(record))

    def paths(self, plan: BatchPlan, table: str) -> list[Path]:
        return [self.run_dir / name for name in plan.files.get(table, ())]
