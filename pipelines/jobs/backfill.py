"""Backfill: the streaming job's own SQL, run in Flink batch mode over historical event files, into the same tables.

Why a backfill is the same SQL: train/serve skew comes from computing a feature twice in two ways. The backfill calls
:func:`pipelines.codegen.flink_sql.build_job_sql` exactly like the streaming run and only switches the runtime mode
(``execution.runtime-mode: batch``, :class:`~pipelines.flink.environment.FlinkOptions`). In batch mode the WATERMARK
clause is ignored and ``CURRENT_WATERMARK`` is NULL, so the ``late_event`` rule never fires and file order does not
matter; every other dead-letter reason applies unchanged. On events that streaming did not find late, both modes give
the same rows (``tests/jobs/test_backfill.py``).

What a backfill writes: the window rows whose ``window_end`` lies in the half-open range ``[start, end)``. A row
depends only on events in ``[window_end - max_window, window_end)``, so the events needed are those from
``start - max_window`` to ``end``; the job reads the files it is given (point it at the folders that cover at least
that span) and rows outside the range are computed but not written.

What happens to rows already in the table for that range: they are **replaced**, in one Delta commit per table, by an
overwrite with a ``replaceWhere``-style predicate on ``window_end`` (delta-rs ``write_deltalake(mode="overwrite",
predicate=...)``). Rows outside the range are untouched, rows of keys that no longer occur in the range disappear, and
re-running the same backfill gives the same table content (idempotent; only ``ingested_at`` changes). The commit is
atomic, so readers (Feast's offline store, training jobs) see either the old range or the new one. Why not a separate
table: the offline store, the data checks and the online loader all read the contract's one table; a side table would
be invisible to them and need a second, hand-made merge. The online store is not touched: it holds the newest row per
entity, which can only change when the range reaches the table's newest window; the summary says when it does
(:attr:`BackfillTable.reaches_newest_window`) so the operator reloads the online store.

The one difference batch mode forces: the ``late_event`` rule. Batch mode has no rowtime attributes, and Flink refuses
to plan ``CURRENT_WATERMARK(_rowtime)`` there ("The argument of CURRENT_WATERMARK() must be a rowtime attribute",
measured); in streaming its value before the first watermark is NULL, which makes the rule never match. So
:func:`batch_job_sql` removes exactly that one ``WHEN`` line from each classified view, which gives the rows the rule's
batch meaning (nothing is late) and leaves every other character of the job as generated (a test checks the
difference is exactly one line per contract).

The per-table commits run on the runtime's ``backfill`` stage (threads: delta-rs and Arrow release the GIL).

On a remote cluster (``FP_FLINK_TARGET=remote`` or ``--cluster``) the batch job runs there with the same SQL; its part
files land in the run folder, which the cluster's TaskManagers must see at the same path (docs/cluster.md).
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipelines.codegen.flink_sql import ROWTIME, JobSql, OutputPaths, build_job_sql
from pipelines.config import Settings
from pipelines.contracts.model import Contract
from pipelines.contracts.valid import load_valid_contracts, select_contracts
from pipelines.delta.dead_letters import dead_letters_by_reason
from pipelines.delta.replace import RangeReplaced, as_utc, replace_window_range
from pipelines.errors import UsageError
from pipelines.flink.environment import flink_options
from pipelines.flink.job import FlinkJobError, run_job
from pipelines.jvm.line_format import line_reader
from pipelines.runtime import Stage
from pipelines.sources.count import count_input_lines

Progress = Callable[[str], None]

STAGE = "backfill"


@dataclass(frozen=True)
class BackfillTable:
    """The outcome for one contract's table."""

    table: str
    source: str
    rows_written: int
    rows_outside_range: int
    rows_replaced: int
    delta_version: int
    events_accepted: int
    dead_letters: Mapping[str, int]
    input_lines: int
    reaches_newest_window: bool

    @property
    def balanced(self) -> bool:
        """True when every input line was either accepted into a window or dead-lettered."""
        return self.events_accepted + sum(self.dead_letters.values()) == self.input_lines


@dataclass(frozen=True)
class BackfillSummary:
    """What a backfill did, for the CLI to render (``to_dict`` for ``--json``)."""

    run_dir: Path
    job_id: str | None
    start: datetime
    end: datetime
    tables: tuple[BackfillTable, ...]
    input_lines: Mapping[str, int]
    flink_seconds: float
    commit_seconds: float
    elapsed_seconds: float

    @property
    def balanced(self) -> bool:
        return all(table.balanced for table in self.tables)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["tables"] = [{**asdict(t), "balanced": t.balanced} for t in self.tables]
        data["balanced"] = self.balanced
        return data


_LATE_RULE = re.compile(rf"^ *WHEN {ROWTIME} <= CURRENT_WATERMARK\({ROWTIME}\)[^\n]* THEN 'late_event'\n",
                        re.MULTILINE)


def batch_job_sql(job: JobSql, contracts: int) -> JobSql:
    """The streaming job's SQL for batch mode: the same text without the ``late_event`` rule (see module docstring).

    Raises ``ValueError`` when the generated SQL does not hold exactly one such rule per contract, or mentions
    ``CURRENT_WATERMARK`` anywhere else: then the generator changed and this function must be looked at again.
    """
    ddl = tuple(_LATE_RULE.sub("", statement) for statement in job.ddl)
    removed = sum(len(_LATE_RULE.findall(statement)) for statement in job.ddl)
    if removed != contracts or any("CURRENT_WATERMARK" in s for s in (*ddl, *job.inserts)):
        raise ValueError(f"expected one late_event rule per contract ({contracts}), found {removed}; "
                         "the generated SQL changed shape")
    return replace(job, ddl=ddl)


@dataclass(frozen=True)
class _CommitItem:
    contract: Contract
    part_dir: Path
    table_path: Path
    start: datetime
    end: datetime
    run_id: str


def _replace(item: _CommitItem) -> RangeReplaced:
    return replace_window_range(item.contract, item.part_dir, item.table_path, item.start, item.end,
                                metadata={"feature_platform.operation": "backfill", "backfill_run": item.run_id})


def _commit_all(items: Sequence[_CommitItem], settings: Settings) -> list[RangeReplaced]:
    """Run the per-table commits on the runtime's ``backfill`` stage (ordered results)."""
    with Stage(STAGE, _replace, kind="thread", config=settings.stage(STAGE)) as stage:
        return list(stage.map(items))


def event_folders(events_dir: Path, sources: set[str]) -> dict[str, Path]:
    """``<events>/<source>`` for every source; a missing one is a usage error naming it."""
    folders = {source: events_dir / source for source in sorted(sources)}
    missing = [str(path) for path in folders.values() if not path.exists()]
    if missing:
        raise UsageError(f"no event files for source folder(s): {', '.join(missing)}",
                         hint="put one sub-folder of JSON-lines files per source under --events")
    return folders


def run_backfill(contracts: Sequence[Contract], events_dir_per_source: Mapping[str, Path], settings: Settings, *,
                 start: datetime, end: datetime, progress: Progress | None = None,
                 run_id: str | None = None) -> BackfillSummary:
    """Recompute every contract over the given event files in Flink batch mode; replace ``[start, end)`` in Delta.

    ``events_dir_per_source`` maps a source name to a JSON-lines file or folder holding the events from at least
    ``start - max_window`` to ``end``. Raises :class:`pipelines.flink.job.FlinkJobError` when the job fails (nothing
    is committed then) and :class:`~pipelines.errors.UsageError` for an empty range or a missing source.
    """
    say = progress or (lambda _message: None)
    started = time.perf_counter()
    start, end = as_utc(start), as_utc(end)
    if not start < end:
        raise UsageError(f"empty backfill range: start {start.isoformat()} is not before end {end.isoformat()}")
    sources = {c.source.name for c in contracts}
    missing = sources - set(events_dir_per_source)
    if missing:
        raise UsageError(f"no events folder for source(s): {sorted(missing)}")
    run_id = run_id or f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
    run_dir = settings.flink_dir / "backfills" / run_id
    source_paths = {name: Path(events_dir_per_source[name]).resolve() for name in sources}
    outputs = {c.table_name: OutputPaths(features=(run_dir / c.table_name / "features").as_uri(),
                                         dead_letters=(run_dir / c.table_name / "dead_letters").as_uri())
               for c in contracts}
    streaming_sql = build_job_sql(contracts, {name: path.as_uri() for name, path in source_paths.items()}, outputs,
                                  line_format=line_reader().format, max_line_bytes=settings.max_line_bytes)
    job_sql = batch_job_sql(streaming_sql, len(contracts))
    input_lines = {name: count_input_lines(path) for name, path in source_paths.items()}

    say(f"flink (batch): {len(contracts)} contract(s) over {sum(input_lines.values())} input line(s), "
        f"window_end in [{start.isoformat()}, {end.isoformat()})")
    options = flink_options(settings, run_dir / "checkpoints", runtime_mode="batch")
    try:
        job = run_job(job_sql, options)
    except FlinkJobError as error:
        raise FlinkJobError(error.message, run_id=run_id, stage="flink (batch)",
                            hint="nothing was committed to Delta; fix the cause and run the backfill again") from error
    say(f"flink: batch job finished in {job.job_seconds:.1f}s (setup {job.setup_seconds:.1f}s)")

    commit_started = time.perf_counter()
    items = [_CommitItem(c, run_dir / c.table_name / "features", settings.delta_table_path(c.table_name), start, end,
                         run_id) for c in contracts]
    tables = []
    for contract, committed in zip(contracts, _commit_all(items, settings), strict=True):
        say(f"delta: {contract.table_name} range replaced by {committed.rows_written} rows "
            f"(version {committed.version})")
        tables.append(BackfillTable(
            table=contract.table_name, source=contract.source.name, rows_written=committed.rows_written,
            rows_outside_range=committed.rows_outside_range, rows_replaced=committed.rows_replaced,
            delta_version=committed.version, events_accepted=committed.accepted,
            dead_letters=dead_letters_by_reason(run_dir / contract.table_name / "dead_letters"),
            input_lines=input_lines[contract.source.name], reaches_newest_window=committed.reaches_newest_window))
    finished = time.perf_counter()
    return BackfillSummary(run_dir=run_dir, job_id=job.job_id, start=start, end=end, tables=tuple(tables),
                           input_lines=input_lines, flink_seconds=job.setup_seconds + job.job_seconds,
                           commit_seconds=finished - commit_started, elapsed_seconds=finished - started)


def backfill_contracts(settings: Settings, *, start: datetime, end: datetime, contract: str | None = None,
                       events_dir: Path | None = None, progress: Progress | None = None) -> BackfillSummary:
    """``feature-platform backfill``: the valid contracts (or the one named) over ``<events>/<source>`` folders
    (default: the data folder's events) with :func:`run_backfill`."""
    if not start < end:
        raise UsageError(f"--from {start.isoformat()} is not before --to {end.isoformat()}")
    contracts = select_contracts(load_valid_contracts(settings.contracts_dir), contract, lambda c: c)
    folders = event_folders(events_dir or settings.events_dir, {c.source.name for c in contracts})
    return run_backfill(contracts, folders, settings, start=start, end=end, progress=progress)
