"""One call for the main job: contracts + event sources → Flink job ⇄ commit stage → Delta → a :class:`RunSummary`.

Every run has its own folder under ``settings.flink_dir / "runs" / <run id>`` (checkpoints, window rows, dead letters,
the commit ledger), so runs never read each other's part files. Exactly once (docs/exactly-once.md):

* Flink checkpoints every ``settings.checkpoint_interval_ms`` into a retained checkpoint directory; its file sink
  finishes part files on each completed checkpoint.
* While the job runs, the commit stage (:mod:`pipelines.delta.commit`) polls for finished part files and commits them
  in numbered batches (write-ahead plan, Delta ``txn`` action per batch), so rows land in Delta during the job.
* Calling :func:`run_contracts` again with the same ``run_id`` after a crash resumes: batches planned before the crash
  are finished (tables that already hold them skip them), and the Flink job restarts from the newest retained
  checkpoint (not from the beginning), unless it had finished, in which case only the remaining files are committed.

The summary proves completeness per contract over the whole run (all attempts): accepted events + dead letters ==
lines in the input (``balanced``). Accepted events are the sum of the window rows' hidden ``_accepted_in_step``
column, which the commit stage reads and keeps out of Delta.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipelines.codegen.flink_sql import JobSql, OutputPaths, build_job_sql
from pipelines.config import Settings
from pipelines.contracts.model import Contract
from pipelines.delta import dead_letters
from pipelines.delta.bookkeeping import BatchRecord, FlinkAttempt, Ledger, RunState, crash_point
from pipelines.delta.commit import CommitStage, CommitTarget, dead_letter_target, feature_target
from pipelines.delta.write import finished_part_files
from pipelines.flink.checkpoints import checkpoint_configuration, latest_checkpoint
from pipelines.flink.environment import FlinkOptions, create_table_environment
from pipelines.flink.job import FlinkJobError, flink_error, submit_job
from pipelines.flink.monitor import JobMetrics, JobMonitor, free_port, rest_configuration
from pipelines.sources.location import SourceLocation
from pipelines.sources.resolve import resolve_bounded_sources

Progress = Callable[[str], None]

#: How often the run polls the job's status, its metrics and the finished part files.
POLL_SECONDS = 0.5
#: How long a restart waits for the JVM of a killed attempt to exit by itself before killing it.
ORPHAN_JVM_GRACE_SECONDS = 15.0
_TERMINAL = {"FINISHED", "FAILED", "CANCELED"}


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


def commit_targets(contracts: Sequence[Contract], run_dir: Path, settings: Settings) -> list[CommitTarget]:
    """The Delta tables a run over ``contracts`` feeds: one per contract, one dead-letter table per source."""
    targets = [feature_target(c, run_dir / c.table_name / "features", settings.delta_table_path(c.table_name))
               for c in contracts]
    for source in sorted({c.source.name for c in contracts}):
        folders = {c.table_name: run_dir / c.table_name / "dead_letters" for c in contracts if c.source.name == source}
        targets.append(dead_letter_target(source, folders, settings.delta_table_path(dead_letters.table_name(source))))
    return targets


def run_contracts(contracts: Sequence[Contract], events_dir_per_source: Mapping[str, Path | SourceLocation],
                  settings: Settings, *,
                  progress: Progress | None = None, run_id: str | None = None) -> RunSummary:
    """Run every contract in one Flink job over the given sources, committing finished output to Delta as it comes.

    ``events_dir_per_source`` maps a source name to a JSON-lines file or folder, or to a bounded
    :data:`~pipelines.sources.location.SourceLocation` (e.g. a Kafka topic; see :mod:`pipelines.sources.resolve`).
    With the ``run_id`` of an interrupted run, resumes it (same contracts and sources). Raises
    :class:`pipelines.flink.job.FlinkJobError` when the job fails (batches committed before stay committed).
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
    options = FlinkOptions(checkpoint_dir=run_dir / "checkpoints", parallelism=settings.parallelism,
                           checkpoint_interval_ms=settings.checkpoint_interval_ms, jvm_heap=settings.jvm_heap,
                           jars=resolved.jars, idle_timeout=None)  # bounded sources: see environment.py

    ledger = Ledger(run_dir)
    state = ledger.load_state(run_id)
    _stop_orphaned_jvms(state)
    flink_seconds = 0.0
    job_id = None
    stage = CommitStage(run_dir, commit_targets(contracts, run_dir, settings), app_id=f"feature-platform:{run_id}",
                        config=settings.stage("delta-commit"), crash_at=settings.test_crash_at, progress=say)
    commit_clock = _Stopwatch()
    with stage:
        attempt = len(state.attempts) + 1
        with commit_clock:
            recovered = stage.recover(attempt)
        if recovered:
            say(f"delta: finished {len(recovered)} batch(es) planned before a crash")
        if not state.flink_finished:
            restore = latest_checkpoint(options.checkpoint_dir)
            say(f"flink: attempt {attempt}, {len(contracts)} contract(s) over {sum(input_lines.values())} input "
                f"line(s)" + (f", resuming from {restore.parent.name}/{restore.name}" if restore else ""))
            flink_started = time.perf_counter()
            job_id = _run_flink_and_commit(job_sql, options, restore, state, ledger, stage, commit_clock, say,
                                           settings.test_crash_at)
            flink_seconds = time.perf_counter() - flink_started
        with commit_clock:
            stage.commit_finished(attempt)
    finished = time.perf_counter()
    return _summarise(contracts, settings, ledger, ledger.load_state(run_id), input_lines, run_dir, job_id,
                      flink_seconds, commit_clock.seconds, finished - started)


class _Stopwatch:
    """Adds up the time spent inside ``with`` blocks."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def __enter__(self) -> None:
        self._started = time.perf_counter()

    def __exit__(self, *_exc: object) -> None:
        self.seconds += time.perf_counter() - self._started


def _run_flink_and_commit(job_sql: JobSql, options: FlinkOptions, restore: Path | None, state: RunState,
                          ledger: Ledger, stage: CommitStage, commit_clock: _Stopwatch, say: Progress,
                          crash_at: str | None) -> str:
    """Start the job (restored from ``restore``), commit finished files while it runs, return its job id."""
    port = free_port()
    env = create_table_environment(options)
    config = env.get_config()
    for key, value in {**checkpoint_configuration(restore), **rest_configuration(port)}.items():
        config.set(key, value)
    result = submit_job(env, job_sql)
    client = result.get_job_client()
    job_id = str(client.get_job_id())
    attempt = FlinkAttempt(number=len(state.attempts) + 1, started_at=datetime.now(UTC).isoformat(),
                           restored_from=str(restore) if restore else None, job_id=job_id, jvm_pid=_jvm_pid())
    state.attempts.append(attempt)
    ledger.save_state(state)
    monitor = JobMonitor(port, job_id)
    committed = 0
    while True:
        status = _job_status(client, result)
        sample = monitor.sample()
        if sample is not None and sample.lines_read is not None:
            attempt.source_records_read = sample.lines_read
            _remember(state, sample)
        with commit_clock:
            committed += stage.commit_finished(attempt.number) is not None
        if status == "RUNNING" and committed and latest_checkpoint(options.checkpoint_dir) is not None:
            crash_point("flink-running", crash_at)
        if status in _TERMINAL:
            break
        time.sleep(POLL_SECONDS)
    if status != "FINISHED":
        raise FlinkJobError(f"the Flink job ended {status}")
    state.flink_finished = True
    ledger.save_state(state)
    say(f"flink: job {job_id} finished; it read {attempt.source_records_read} line(s)")
    crash_point("flink-finished", crash_at)
    return job_id


def _job_status(client: Any, result: Any) -> str:
    """RUNNING, FINISHED, …; raises :class:`FlinkJobError` with Flink's message when the job failed.

    The local per-job mini-cluster shuts down as soon as its job ends, after which asking for the status fails; the
    job's result then tells whether it finished or failed.
    """
    try:
        return str(client.get_job_status().result()).rsplit(".", 1)[-1]
    except Exception:  # py4j: the mini-cluster is gone, the job has ended
        pass
    try:
        result.wait()
    except Exception as error:  # py4j wraps Java exceptions; keep Flink's message, drop the Java stack
        raise flink_error(error) from error
    return "FINISHED"


def _remember(state: RunState, sample: JobMetrics) -> None:
    """Keep the newest known values (the watermark is unknown until the first one passes)."""
    state.metrics = {**state.metrics, **{k: v for k, v in sample.to_dict().items() if v is not None}}


def _jvm_pid() -> int | None:
    """The pid of the JVM PyFlink started for this process (its gateway server), if any."""
    import psutil

    for child in psutil.Process().children(recursive=True):
        try:
            if "java" in child.name():
                return child.pid
        except psutil.Error:
            continue
    return None


def _stop_orphaned_jvms(state: RunState) -> None:
    """A killed attempt's JVM exits by itself when its parent dies (PyFlink's gateway watches its stdin); should it
    still run, it must not write into the run folder beside the restarted job: wait a little, then kill it."""
    import psutil

    for attempt in state.attempts:
        if attempt.jvm_pid is None:
            continue
        try:
            process = psutil.Process(attempt.jvm_pid)
            if "PythonGatewayServer" not in " ".join(process.cmdline()):
                continue
            process.wait(timeout=ORPHAN_JVM_GRACE_SECONDS)
        except psutil.NoSuchProcess:
            continue
        except psutil.TimeoutExpired:
            process.kill()
            process.wait(timeout=ORPHAN_JVM_GRACE_SECONDS)


def _summarise(contracts: Sequence[Contract], settings: Settings, ledger: Ledger, state: RunState,
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
                               delta_version=version if version is not None else _table_version(
                                   settings.delta_table_path(contract.table_name)),
                               events_accepted=accepted, dead_letters=dict(sorted(reasons.items())),
                               input_lines=input_lines[contract.source.name]))
    dead = []
    for source in sorted({c.source.name for c in contracts}):
        name = dead_letters.table_name(source)
        rows, _, version, by_contract = per_table.get(name, (0, 0, None, {}))
        dead.append(DeadLetterTableRun(name, source, rows, version if version is not None else _table_version(
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


def _table_version(path: Path) -> int | None:
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    try:
        return DeltaTable(str(path)).version()
    except TableNotFoundError:
        return None
