"""The commit stage (runtime stage ``delta-commit``): finished part files → exactly-once Delta commits, batch by batch.

A run feeds several Delta tables (:class:`CommitTarget`): one per contract (its window rows) and one dead-letter table
per source (the rejected lines of every contract reading it). :class:`CommitStage` is called repeatedly while Flink
runs (:meth:`CommitStage.commit_finished`) and once more at the end; each call:

1. lists the finished part files no earlier batch claimed, and writes them as the next batch's plan (write-ahead, see
   :mod:`pipelines.delta.ledger`);
2. commits every target of the batch in the runtime stage (threads: delta-rs releases the GIL), each commit carrying
   the ``txn`` action ``(app_id, batch seq)``, so a replay is skipped;
3. writes the batch's done record (rows, versions, accepted events, dead letters by reason).

:meth:`CommitStage.recover` first finishes batches planned before a crash. Backfills reuse the stage with their own
``app_id`` (one app id per writer lineage: the run id).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

import pyarrow.compute as pc

from pipelines.contracts.model import Contract
from pipelines.delta import dead_letters
from pipelines.delta.ledger import BatchPlan, BatchRecord, Ledger, TableCommit, crash_point
from pipelines.delta.schema import HIDDEN_SCHEMA
from pipelines.delta.write import append_once, commit_part_files, part_file_schema, read_csv_parts
from pipelines.layout import ACCEPTED_IN_STEP, finished_files
from pipelines.runtime.config import StageConfig

STAGE_NAME = "delta-commit"


@dataclass(frozen=True)
class CommitTarget:
    """One Delta table fed by a run, and the part-file folders (by contract table name) it takes its files from.

    ``contract`` is set for a feature table (one folder); ``source`` for a dead-letter table (one folder per contract
    reading the source)."""

    table: str
    table_path: Path
    part_dirs: Mapping[str, Path]
    contract: Contract | None = None
    source: str | None = None


def feature_target(contract: Contract, part_dir: Path, table_path: Path) -> CommitTarget:
    return CommitTarget(contract.table_name, table_path, {contract.table_name: part_dir}, contract=contract)


def dead_letter_target(source: str, part_dirs: Mapping[str, Path], table_path: Path) -> CommitTarget:
    return CommitTarget(dead_letters.table_name(source), table_path, dict(part_dirs), source=source)


@dataclass(frozen=True)
class _Task:
    target: CommitTarget
    files: Mapping[str, Sequence[Path]]  # contract table -> part files
    app_id: str
    seq: int
    ingested_at: datetime


def commit_target_files(target: CommitTarget, files: Mapping[str, Sequence[Path]], *, app_id: str, txn_version: int,
                        ingested_at: datetime | None = None) -> TableCommit:
    """Commit one target's part files (per contract table) as one idempotent Delta commit; the reusable entry point."""
    instant = (ingested_at or datetime.now(UTC)).astimezone(UTC)
    if target.contract is not None:
        result = commit_part_files(target.contract, None, target.table_path, files=files.get(target.table, ()),
                                   ingested_at=instant, trailing=HIDDEN_SCHEMA, app_id=app_id,
                                   txn_version=txn_version)
        accepted = 0
        if result.trailing is not None and result.trailing.num_rows:
            accepted = int(pc.sum(result.trailing[ACCEPTED_IN_STEP]).as_py() or 0)
        return TableCommit(target.table, result.rows, result.version, result.skipped, events_accepted=accepted)
    if target.source is None:
        raise ValueError(f"target {target.table} has neither a contract nor a source")
    parts = {contract: read_csv_parts(list(paths), dead_letters.PART_SCHEMA) for contract, paths in files.items()}
    data = dead_letters.to_delta_rows(parts, instant)
    table = dead_letters.ensure_table(target.source, target.table_path)
    version, skipped = append_once(table, data, app_id=app_id, txn_version=txn_version,
                                   metadata={"source": target.source, "part_files": str(sum(map(len, files.values())))})
    counts = {contract: reasons for contract, reasons in dead_letters.counts_by_reason(parts).items() if reasons}
    return TableCommit(target.table, data.num_rows, version, skipped, dead_letters=counts)


def _commit_task(task: _Task) -> TableCommit:
    return commit_target_files(task.target, task.files, app_id=task.app_id, txn_version=task.seq,
                               ingested_at=task.ingested_at)


@dataclass
class CommitStage:
    """Turns a run's finished part files into batches of exactly-once commits; use as a context manager.

    ``crash_at`` is the test-only crash point (``Settings.test_crash_at``).
    """

    run_dir: Path
    targets: Sequence[CommitTarget]
    app_id: str
    config: StageConfig = field(default_factory=StageConfig)
    crash_at: str | None = None
    progress: Callable[[str], None] = lambda _message: None
    ledger: Ledger = field(init=False)

    def __post_init__(self) -> None:
        self.ledger = Ledger(self.run_dir)
        self._stage = None

    def __enter__(self) -> CommitStage:
        from pipelines.runtime import Stage

        self._stage = Stage(STAGE_NAME, _commit_task, kind="thread", config=self.config).__enter__()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        stage, self._stage = self._stage, None
        if stage is not None:
            stage.__exit__(kind, error, trace)

    @property
    def metrics(self) -> dict[str, object]:
        return self._stage.metrics.to_dict() if self._stage is not None else {}

    def recover(self, attempt: int) -> list[BatchRecord]:
        """Finish every batch planned before a crash (in order); tables that already hold a batch skip it."""
        return [self._commit(plan, attempt) for plan in self.ledger.pending()]

    def commit_finished(self, attempt: int) -> BatchRecord | None:
        """Plan the finished part files no batch claimed yet as the next batch and commit it (None: nothing new)."""
        claimed = self.ledger.claimed_files()
        files = {str(folder.relative_to(self.run_dir)): new for folder in self._folders()
                 if (new := self._unclaimed(folder, claimed))}
        if not files:
            return None
        plan = self.ledger.plan(files)
        crash_point("before-commit", self.crash_at)
        return self._commit(plan, attempt)

    def unclaimed_events(self) -> Counter[str]:
        """Per contract table, the events that finished part files no batch claimed yet account for: accepted in a
        window step, or dead-lettered. What the next batch will add to the ledger's totals; reads, commits nothing."""
        claimed = self.ledger.claimed_files()
        events: Counter[str] = Counter()
        for target in self.targets:
            for contract_table, folder in target.part_dirs.items():
                files = self._unclaimed(folder, claimed)
                if not files:
                    continue
                if target.contract is not None:
                    steps = read_csv_parts(files, part_file_schema(target.contract, HIDDEN_SCHEMA))[ACCEPTED_IN_STEP]
                    events[contract_table] += int(pc.sum(steps).as_py() or 0)
                else:
                    events[contract_table] += read_csv_parts(files, dead_letters.PART_SCHEMA).num_rows
        return events

    def _unclaimed(self, folder: Path, claimed: set[str]) -> list[Path]:
        return [path for path in finished_files(folder)
                if str(path.relative_to(self.run_dir)) not in claimed and path.stat().st_size > 0]

    def _folders(self) -> list[Path]:
        return [folder for target in self.targets for folder in target.part_dirs.values()]

    def _commit(self, plan: BatchPlan, attempt: int) -> BatchRecord:
        if self._stage is None:
            raise RuntimeError("CommitStage is used outside its `with` block")
        instant = datetime.now(UTC)
        tasks = []
        for target in self.targets:
            files = {contract: self.ledger.paths(plan, str(folder.relative_to(self.run_dir)))
                     for contract, folder in target.part_dirs.items()}
            if any(files.values()):
                tasks.append(_Task(target, files, self.app_id, plan.seq, instant))
        commits = []
        for commit in self._stage.map(tasks):
            commits.append(commit)
            crash_point("during-commit", self.crash_at)
        record = BatchRecord(plan.seq, attempt, instant.isoformat(), tuple(commits))
        self.ledger.mark_done(record)
        self.progress(f"delta: batch {plan.seq}: " + ", ".join(
            f"{c.table} +{c.rows}" + (" (replay skipped)" if c.skipped else "") for c in commits))
        return record
