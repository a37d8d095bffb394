"""One call for the main job: contracts + event folders → Flink job → Delta commits → a :class:`RunSummary`.

The CLI only renders the summary. Every run gets its own folder under ``settings.flink_dir / "runs"`` (checkpoints,
window rows, dead letters), so runs never read each other's part files. The summary proves completeness per contract:
accepted events + dead letters must equal the lines in the input (``balanced``). Accepted events are the sum of the
window rows' hidden ``_accepted_in_step`` column, which the commit stage reads and keeps out of Delta.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.codegen.flink_sql import ACCEPTED_IN_STEP, HIDDEN_FEATURE_COLUMNS, OutputPaths, build_job_sql
from pipelines.config import Settings
from pipelines.contracts.model import Contract
from pipelines.delta.write import CommitResult, commit_part_files, finished_part_files, read_csv_parts
from pipelines.flink.environment import FlinkOptions
from pipelines.flink.job import run_job
from pipelines.sources.location import SourceLocation
from pipelines.sources.resolve import resolve_bounded_sources

Progress = Callable[[str], None]

_DEAD_LETTER_SCHEMA = pa.schema([("reason", pa.string()), ("source_name", pa.string()), ("source_file", pa.string()),
                                 ("processed_at", pa.timestamp("us", tz="UTC")), ("line", pa.string())])
_ARROW_TYPES = {"BIGINT": pa.int64()}  # the SQL types HIDDEN_FEATURE_COLUMNS uses
_HIDDEN_SCHEMA = pa.schema([(name, _ARROW_TYPES[sql_type]) for name, sql_type in HIDDEN_FEATURE_COLUMNS])


@dataclass(frozen=True)
class TableRun:
    """The outcome for one contract (one Delta table)."""

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
class RunSummary:
    """What a run did, for the CLI to render."""

    run_dir: Path
    job_id: str | None
    tables: tuple[TableRun, ...]
    input_lines: Mapping[str, int]
    flink_seconds: float
    commit_seconds: float
    elapsed_seconds: float
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def balanced(self) -> bool:
        return all(table.balanced for table in self.tables)


def count_input_lines(path: Path) -> int:
    """Lines Flink's raw format will read from a file or folder (hidden ``.``/``_`` files skipped, as Flink does)."""
    files = [path] if path.is_file() else finished_part_files(path)
    total = 0
    for file in files:
        with file.open("rb") as handle:
            last = b""
            while chunk := handle.read(1 << 22):
                total += chunk.count(b"\n")
                last = chunk[-1:]
            total += 1 if last not in (b"", b"\n") else 0
    return total


def _output_paths(run_dir: Path, table: str) -> OutputPaths:
    base = run_dir / table
    return OutputPaths(features=(base / "features").as_uri(), dead_letters=(base / "dead_letters").as_uri())


def _dead_letters_by_reason(folder: Path) -> dict[str, int]:
    rows = read_csv_parts(finished_part_files(folder), _DEAD_LETTER_SCHEMA)
    return dict(sorted(Counter(rows["reason"].to_pylist()).items()))


def _accepted_events(result: CommitResult) -> int:
    if result.trailing is None or result.trailing.num_rows == 0:
        return 0
    return int(pc.sum(result.trailing[ACCEPTED_IN_STEP]).as_py() or 0)


def run_contracts(contracts: Sequence[Contract], events_dir_per_source: Mapping[str, Path | SourceLocation],
                  settings: Settings, *,
                  progress: Progress | None = None, run_id: str | None = None) -> RunSummary:
    """Run every contract in one Flink job over the given event folders, then commit each table to Delta.

    ``events_dir_per_source`` maps a source name to a JSON-lines file or folder, or to a bounded
    :data:`~pipelines.sources.location.SourceLocation` (e.g. a Kafka topic; see :mod:`pipelines.sources.resolve`).
    Raises :class:`pipelines.flink.job.FlinkJobError` when the job fails (nothing is committed then).
    """
    say = progress or (lambda _message: None)
    started = time.perf_counter()
    run_id = run_id or f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
    run_dir = settings.flink_dir / "runs" / run_id
    sources = {c.source.name for c in contracts}
    missing = sources - set(events_dir_per_source)
    if missing:
        raise ValueError(f"no events folder for source(s): {sorted(missing)}")
    resolved = resolve_bounded_sources({name: events_dir_per_source[name] for name in sources}, count_input_lines)
    outputs = {c.table_name: _output_paths(run_dir, c.table_name) for c in contracts}
    job_sql = build_job_sql(contracts, resolved.locations, outputs)
    input_lines = dict(resolved.input_lines)

    say(f"flink: running {len(contracts)} contract(s) over {sum(input_lines.values())} input line(s)")
    options = FlinkOptions(checkpoint_dir=run_dir / "checkpoints", parallelism=settings.parallelism,
                           checkpoint_interval_ms=settings.checkpoint_interval_ms, jvm_heap=settings.jvm_heap,
                           jars=resolved.jars)
    job = run_job(job_sql, options)
    say(f"flink: job finished in {job.job_seconds:.1f}s (setup {job.setup_seconds:.1f}s)")

    commit_started = time.perf_counter()
    tables = []
    for contract in contracts:
        base = run_dir / contract.table_name
        result: CommitResult = commit_part_files(contract, base / "features",
                                                 settings.delta_table_path(contract.table_name),
                                                 trailing=_HIDDEN_SCHEMA)
        say(f"delta: {contract.table_name} +{result.rows} rows (version {result.version})")
        tables.append(TableRun(table=contract.table_name, source=contract.source.name, rows_written=result.rows,
                               delta_version=result.version, events_accepted=_accepted_events(result),
                               dead_letters=_dead_letters_by_reason(base / "dead_letters"),
                               input_lines=input_lines[contract.source.name]))
    finished = time.perf_counter()
    return RunSummary(run_dir=run_dir, job_id=job.job_id, tables=tuple(tables), input_lines=input_lines,
                      flink_seconds=job.setup_seconds + job.job_seconds, commit_seconds=finished - commit_started,
                      elapsed_seconds=finished - started)
