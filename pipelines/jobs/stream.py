"""The continuous job, ``feature-platform stream``: unbounded sources → Flink ⇄ commit stage → Delta → online store.

Every contract (or one, ``StreamOptions.contract``) runs in one never-ending Flink job over real sources:

* **Kafka** topics (``settings.kafka_topic(source)``, unbounded, from the consumer group's offsets) when Kafka is
  configured (``FP_KAFKA_BOOTSTRAP_SERVERS`` set, or ``stream_source: kafka``);
* otherwise the data folder's **watched events folder**, ``<data>/events/<source>/``: files published there
  atomically (written under a hidden name, then renamed) are read as they arrive, each once.

While Flink runs, the poll loop (every :data:`POLL_SECONDS`) commits each batch of finished part files to Delta
exactly once (the ``delta-commit`` stage of :mod:`pipelines.jobs.compute`, same ledger and Delta ``txn`` ids), then
hands the versions it reached to the ``online-push`` stage (:mod:`pipelines.feast_sync.online_push`), which writes
their newest values into the online store at once. The source readers use ``settings.source_idle_timeout`` at every
parallelism so that a reader with nothing to read (an empty or quiet Kafka partition, a watched folder between files)
does not hold the watermark, and windows fire; a Kafka topic is read by one reader whatever the parallelism, with
the classification and local window aggregates chained to it (:mod:`pipelines.flink.single_reader`), so that
lateness is classified against the watermark the windows use (docs/sources.md, "Parallelism and idle partitions").

**Stopping and resuming.** When ``stop`` is set (the CLI sets it on Ctrl-C or SIGTERM) the job is stopped with a
savepoint (no drain: open windows stay in the savepoint), which also finishes every part file the job emitted; those
last batches are committed and pushed, and the function returns. The next call with the same contracts and source
resumes from the newer of that savepoint and the latest retained checkpoint (after a crash: the commit stage first
finishes batches planned before it, and the online push catches up from the store's version marker). The stream's
folder, ``<data>/flink/streams/<stream id>``, is keyed by the source kind and the contracts' content hashes: a changed
contract is a different job graph, which cannot restore the old state, so it starts a stream of its own.
"""

from __future__ import annotations

import hashlib
import shutil
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from pipelines.codegen.flink_sql import OutputPaths, build_job_sql
from pipelines.config import Settings
from pipelines.contracts.model import Contract
from pipelines.contracts.valid import load_valid_contracts, select_contracts
from pipelines.delta.commit import CommitStage
from pipelines.delta.ledger import BatchRecord
from pipelines.delta.tables import table_version
from pipelines.feast_sync.online import open_online_store
from pipelines.feast_sync.online_push import STAGE_NAME as PUSH_STAGE
from pipelines.feast_sync.online_push import OnlinePush, PushOutcome
from pipelines.feast_sync.store import apply_repo, is_applied
from pipelines.flink.checkpoints import latest_restore_point
from pipelines.flink.environment import flink_options
from pipelines.flink.job import FlinkJobError
from pipelines.flink.monitor import JobMetrics
from pipelines.flink.running import TERMINAL_STATES, RunningJob, start_job, stop_orphaned_jvm
from pipelines.jobs import stream_metrics as metrics
from pipelines.jobs.compute import commit_targets
from pipelines.jobs.progress import Progress, silent
from pipelines.jobs.run_state import FlinkAttempt, load_run_state, save_run_state
from pipelines.jvm.line_format import line_reader
from pipelines.lineage.hook import publish_if_configured
from pipelines.sources.location import FileSource, SourceLocation

SourceKind = Literal["kafka", "files"]

#: How often the loop checks the job, commits finished part files and pushes them online (freshness depends on it).
POLL_SECONDS = 0.25
#: How often the job's REST metrics are sampled (several HTTP calls; Flink refreshes them every few seconds anyway).
SAMPLE_SECONDS = 1.0
#: The events/s rate is taken over at least this many seconds (Flink's REST metrics move in steps).
RATE_WINDOW_SECONDS = 5.0


@dataclass(frozen=True)
class StreamOptions:
    """What ``feature-platform stream`` runs (its command-line options)."""

    contract: str | None = None
    #: None: ``settings.stream_source``.
    source: Literal["auto", "kafka", "files"] | None = None
    #: Seconds between two progress reports (events/s, lag, last commit, online freshness per contract).
    report_every_s: float = 5.0
    #: How long the stop-with-savepoint may take before the stream gives up on it (the job is then cancelled and
    #: the next start resumes from the latest checkpoint instead).
    stop_timeout_s: float = 120.0


@dataclass
class ContractStatus:
    """One contract's live state, as the progress lines and the summary show it."""

    table: str
    rows_committed: int = 0
    batches: int = 0
    last_commit_at: float | None = None
    rows_pushed: int = 0
    delta_version: int | None = None
    online_version: int | None = None
    newest_online: datetime | None = None
    push_error: str | None = None

    def freshness_seconds(self, now: float) -> float | None:
        return None if self.newest_online is None else round(now - self.newest_online.timestamp(), 3)


@dataclass
class StreamSummary:
    """What one ``stream`` session did, from start to its clean stop."""

    stream_id: str
    source_kind: SourceKind
    stream_dir: Path
    attempt: int
    restored_from: str | None
    savepoint: str | None
    contracts: dict[str, ContractStatus]
    lines_read: int | None
    dead_letters: dict[str, dict[str, int]] = field(default_factory=dict)  # source -> reason -> lines
    recovered_batches: int = 0
    elapsed_seconds: float = 0.0

    @property
    def pending_online(self) -> dict[str, int]:
        """Tables whose newest committed version did not reach the online store (retried on the next start)."""
        return {t: s.delta_version for t, s in self.contracts.items()
                if s.delta_version is not None and s.online_version != s.delta_version}

    def to_dict(self) -> dict[str, Any]:
        now = time.time()
        return {
            "stream_id": self.stream_id, "source": self.source_kind, "stream_dir": str(self.stream_dir),
            "attempt": self.attempt, "restored_from": self.restored_from, "savepoint": self.savepoint,
            "lines_read": self.lines_read, "recovered_batches": self.recovered_batches,
            "dead_letters": self.dead_letters, "pending_online": self.pending_online,
            "elapsed_seconds": round(self.elapsed_seconds, 2),
            "contracts": {t: {"batches": s.batches, "rows_committed": s.rows_committed, "rows_pushed": s.rows_pushed,
                              "delta_version": s.delta_version, "online_version": s.online_version,
                              "online_freshness_s": s.freshness_seconds(now), "push_error": s.push_error}
                          for t, s in self.contracts.items()},
        }


# ------------------------------------------------------------------------------------------------------ set-up
def choose_source_kind(settings: Settings, requested: str | None) -> SourceKind:
    """``kafka`` or ``files``: the requested kind, else ``settings.stream_source``; ``auto`` means Kafka when its
    brokers were configured, else the watched events folder (the embedded default)."""
    kind = requested or settings.stream_source
    if kind == "auto":
        return "kafka" if settings.kafka_configured else "files"
    if kind not in ("kafka", "files"):
        raise ValueError(f"unknown stream source kind {kind!r}")
    return kind  # type: ignore[return-value]


def stream_locations(settings: Settings, contracts: Sequence[Contract],
                     kind: SourceKind) -> tuple[dict[str, SourceLocation], tuple[Path, ...]]:
    """Each source's unbounded location and the connector jars the job needs (Kafka only)."""
    sources = sorted({c.source.name for c in contracts})
    if kind == "kafka":
        from pipelines.jvm.jars import FLINK_KAFKA, fetch_jars
        from pipelines.sources.kafka import kafka_location

        return {name: kafka_location(settings, name) for name in sources}, fetch_jars(FLINK_KAFKA)
    interval = timedelta(milliseconds=settings.stream_watch_interval_ms)
    locations: dict[str, SourceLocation] = {}
    for name in sources:
        folder = settings.events_dir / name
        folder.mkdir(parents=True, exist_ok=True)
        locations[name] = FileSource.local(folder, monitor_interval=interval)
    return locations, ()


def stream_id(contracts: Sequence[Contract], kind: SourceKind) -> str:
    """Names the stream's folder: the source kind and a hash of the contracts' content (the job graph's identity)."""
    digest = hashlib.sha256("\n".join(sorted(c.content_hash() for c in contracts)).encode()).hexdigest()[:12]
    return f"{kind}-{digest}"


def stream_dir(settings: Settings, contracts: Sequence[Contract], kind: SourceKind) -> Path:
    return settings.flink_dir / "streams" / stream_id(contracts, kind)


# ------------------------------------------------------------------------------------------------------ the job
def run_stream(settings: Settings, options: StreamOptions | None = None, *, stop: threading.Event,
               progress: Progress = silent) -> StreamSummary:
    """Run the continuous job until ``stop`` is set, then stop it cleanly (see the module docstring).

    Raises :class:`~pipelines.flink.job.FlinkJobError` when the job fails or ends by itself (batches committed and
    pushed before stay; the next start resumes from the latest checkpoint)."""
    options = options or StreamOptions()
    started = time.perf_counter()
    contracts = select_contracts(load_valid_contracts(settings.contracts_dir), options.contract, lambda c: c)
    kind = choose_source_kind(settings, options.source)
    locations, jars = stream_locations(settings, contracts, kind)
    run_dir = stream_dir(settings, contracts, kind)
    outputs = {c.table_name: OutputPaths((run_dir / c.table_name / "features").as_uri(),
                                         (run_dir / c.table_name / "dead_letters").as_uri()) for c in contracts}
    job_sql = build_job_sql(contracts, locations, outputs, line_format=line_reader().format,
                            max_line_bytes=settings.max_line_bytes)
    flink = flink_options(settings, run_dir / "checkpoints", jars=jars, idle_timeout=settings.source_idle_timeout)
    tables = [(c, settings.delta_table_path(c.table_name)) for c in contracts]
    store = open_online_store(settings)
    if not is_applied(store, tables):
        apply_repo(store, tables)
    progress(f"stream {run_dir.name}: {len(contracts)} contract(s) over {kind} "
             f"({', '.join(_describe(loc) for loc in locations.values())}); data in {settings.data_dir}")

    state = load_run_state(run_dir, run_dir.name)
    for earlier in state.attempts:
        if earlier.jvm_pid is not None:
            stop_orphaned_jvm(earlier.jvm_pid)
    loop = _StreamLoop(settings, contracts, run_dir, kind, progress, options)
    targets = commit_targets(contracts, run_dir, settings)
    commit_stage = CommitStage(run_dir, targets, app_id=f"feature-platform:stream:{run_dir.name}",
                               config=settings.stage("delta-commit"), crash_at=settings.test_crash_at,
                               progress=progress)
    attempt = len(state.attempts) + 1
    with commit_stage, OnlinePush(store, tables, config=settings.stage(PUSH_STAGE),
                                  load_config=settings.stage("online-load")) as push:
        loop.commits, loop.push = commit_stage, push
        recovered = commit_stage.recover(attempt)
        for record in recovered:
            loop.committed(record)
        loop.catch_up_online(tables)
        restore = latest_restore_point(flink.checkpoint_dir, run_dir / "savepoints")
        progress(f"flink: attempt {attempt}" + (f", resuming from {restore.parent.name}/{restore.name}"
                                                if restore else ", from the start of the sources"))
        job = start_job(job_sql, flink, restore)
        state.attempts.append(FlinkAttempt(number=attempt, started_at=datetime.now(UTC).isoformat(),
                                           restored_from=str(restore) if restore else None, job_id=job.job_id,
                                           jvm_pid=job.jvm_pid))
        save_run_state(run_dir, state)
        lineage = _publish_lineage_in_background(settings, contracts, locations, progress)
        savepoint = loop.run(job, attempt, stop)
        state.attempts[-1].source_records_read = loop.lines_read
        save_run_state(run_dir, state)
    if lineage is not None:
        lineage.join(timeout=settings.openmetadata.deadline_s)
    if savepoint:
        _remove_older_savepoints(run_dir / "savepoints", Path(savepoint))
    return StreamSummary(run_dir.name, kind, run_dir, attempt, str(restore) if restore else None, savepoint,
                         loop.status, loop.lines_read, loop.dead_letters, len(recovered),
                         time.perf_counter() - started)


def _publish_lineage_in_background(settings: Settings, contracts: Sequence[Contract],
                                   locations: Mapping[str, SourceLocation],
                                   progress: Progress) -> threading.Thread | None:
    """Publish lineage once the job runs, as ``run`` does, without holding up the first commits.

    The hook never raises and is bounded by the OpenMetadata deadline; the stream joins the thread before it returns.
    """
    if settings.openmetadata.url is None:
        return None
    thread = threading.Thread(target=publish_if_configured, args=(settings, contracts),
                              kwargs={"sources": locations, "progress": progress}, name="lineage", daemon=True)
    thread.start()
    return thread


class _StreamLoop:
    """The poll loop's state: commit, push, sample, report; then the clean stop."""

    def __init__(self, settings: Settings, contracts: Sequence[Contract], run_dir: Path, kind: SourceKind,
                 progress: Progress, options: StreamOptions) -> None:
        self.settings = settings
        self.run_dir = run_dir
        self.progress = progress
        self.options = options
        self.status = {c.table_name: ContractStatus(c.table_name) for c in contracts}
        self.sources = sorted({c.source.name for c in contracts})
        self.dead_letter_sources = {t.table: t.source for t in commit_targets(contracts, run_dir, settings)
                                    if t.source is not None}
        self.dead_letters: dict[str, dict[str, int]] = {}
        self.lines_read: int | None = None
        self.rates: dict[str, float] = {}
        self._last_sample: JobMetrics | None = None
        self._samples: deque[JobMetrics] = deque()
        self._next_sample = 0.0
        self._last_report = time.monotonic()
        self.commits: CommitStage
        self.push: OnlinePush

    # -- the loop ------------------------------------------------------------------------------------------------
    def run(self, job: RunningJob, attempt: int, stop: threading.Event) -> str | None:
        """Poll until ``stop`` is set, then stop with a savepoint; returns its path."""
        stopped_cleanly = False
        try:
            while not stop.is_set():
                status = job.status()
                if status in TERMINAL_STATES:
                    raise FlinkJobError(f"the continuous Flink job ended {status} by itself",
                                        hint="check the sources; the next `stream` resumes from the latest checkpoint")
                self.sample(job)
                self.commit_and_push(attempt)
                self.report()
                stop.wait(POLL_SECONDS)
            self.progress("stopping: stop-with-savepoint, then the last batches")
            savepoint = self._stop_with_savepoint(job)
            stopped_cleanly = True
            self._wait_until_ended(job)
            while self.commit_and_push(attempt):
                pass
            self.push_pending()
            self.report(force=True)
            self.progress(f"stopped with savepoint {savepoint}")
            return savepoint
        finally:
            if not stopped_cleanly:
                job.cancel()  # the retained checkpoint stays: the next start resumes from it

    def _stop_with_savepoint(self, job: RunningJob) -> str:
        """Stop with a savepoint; while the job's tasks are still being deployed (a stop right after the start, or
        a loaded machine) Flink refuses the savepoint, so it is asked again until ``stop_timeout_s`` has passed."""
        deadline = time.monotonic() + self.options.stop_timeout_s
        while True:
            try:
                return job.stop_with_savepoint(self.run_dir / "savepoints",
                                               max(1.0, deadline - time.monotonic()))
            except FlinkJobError as error:
                if not _tasks_not_running_yet(error) or time.monotonic() > deadline:
                    raise
                time.sleep(1.0)

    def _wait_until_ended(self, job: RunningJob, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while job.status() not in TERMINAL_STATES and time.monotonic() < deadline:
            time.sleep(0.1)

    def commit_and_push(self, attempt: int) -> bool:
        """Commit the finished part files as one batch and push what it committed; True when there was a batch."""
        record = self.commits.commit_finished(attempt)
        if record is None:
            if self.push.pending:
                self.push_pending()
            return False
        self.committed(record)
        self.pushed(self.push.push({c.table: c.version for c in record.tables
                                    if c.table in self.status and c.version is not None}))
        return True

    def push_pending(self) -> None:
        self.pushed(self.push.push())

    def catch_up_online(self, tables: Sequence[tuple[Contract, Path]]) -> None:
        """After a restart, bring the store up to each table's current version (a crash may have come between a
        commit and its push; a store that already holds it skips every row)."""
        versions = {}
        for contract, path in tables:
            version = table_version(path)
            if version is not None:
                versions[contract.table_name] = version
                self.status[contract.table_name].delta_version = version
        if versions:
            self.pushed(self.push.push(versions))

    # -- bookkeeping ---------------------------------------------------------------------------------------------
    def committed(self, record: BatchRecord) -> None:
        now = time.time()
        age = self._batch_age(record, now)
        for commit in record.tables:
            if commit.table in self.status:
                status = self.status[commit.table]
                status.rows_committed += commit.rows
                status.batches += 1
                status.last_commit_at = now
                if commit.version is not None:
                    status.delta_version = commit.version
                metrics.STREAM_LAST_COMMIT.labels(commit.table).set(now)
                if age is not None:
                    metrics.STREAM_COMMIT_LATENCY.labels(commit.table).observe(age)
            source = self.dead_letter_sources.get(commit.table)
            if source is not None and not commit.skipped:
                for reasons in commit.dead_letters.values():
                    for reason, count in reasons.items():
                        counts = self.dead_letters.setdefault(source, {})
                        counts[reason] = counts.get(reason, 0) + count
                        metrics.STREAM_DEAD_LETTERS.labels(source, reason).inc(count)

    def _batch_age(self, record: BatchRecord, now: float) -> float | None:
        """Seconds from the oldest part file of the batch (finished by a checkpoint) to its commit."""
        plan = next((p for p in reversed(self.commits.ledger.plans()) if p.seq == record.seq), None)
        if plan is None:
            return None
        times = []
        for names in plan.files.values():
            for name in names:
                try:
                    times.append((self.run_dir / name).stat().st_mtime)
                except OSError:
                    continue
        return max(0.0, now - min(times)) if times else None

    def pushed(self, outcomes: list[PushOutcome]) -> None:
        for outcome in outcomes:
            status = self.status[outcome.table_name]
            if outcome.load is None:
                if status.push_error != outcome.error:
                    self.progress(f"online: {outcome.table_name} v{outcome.version} not pushed yet "
                                  f"(retried on the next poll): {outcome.error}")
                status.push_error = outcome.error
                continue
            status.push_error = None
            status.online_version = outcome.version
            status.rows_pushed += outcome.load.rows_written
            metrics.ONLINE_PUSH_ROWS.labels(outcome.table_name).inc(outcome.load.rows_written)
            newest = self.push.newest_online.get(outcome.table_name)
            if newest is not None:
                status.newest_online = newest if newest.tzinfo else newest.replace(tzinfo=UTC)

    def sample(self, job: RunningJob) -> None:
        """Sample the job's metrics (at most every :data:`SAMPLE_SECONDS`): events read and their rate per source,
        watermark lag."""
        if time.monotonic() < self._next_sample:
            return
        self._next_sample = time.monotonic() + SAMPLE_SECONDS
        sample = job.sample()
        if sample is None or sample.lines_read is None:
            return
        previous = self._last_sample
        self._last_sample = sample
        self.lines_read = sample.lines_read
        self._samples.append(sample)
        while len(self._samples) > 2 and sample.sampled_at - self._samples[1].sampled_at >= RATE_WINDOW_SECONDS:
            self._samples.popleft()
        oldest = self._samples[0]
        for source in self.sources:
            read = self._read(sample, source)
            before = self._read(previous, source) if previous is not None else 0
            if read > before:
                metrics.STREAM_EVENTS.labels(source).inc(read - before)
            if sample.sampled_at > oldest.sampled_at:
                rate = max(0, read - self._read(oldest, source)) / (sample.sampled_at - oldest.sampled_at)
                self.rates[source] = rate
                metrics.STREAM_EVENTS_PER_SECOND.labels(source).set(rate)
            if sample.watermark_lag_s is not None:
                metrics.STREAM_SOURCE_LAG.labels(source).set(sample.watermark_lag_s)

    def _read(self, sample: JobMetrics, source: str) -> int:
        """Lines ``source`` read in ``sample`` (the job's total when it reads one source only)."""
        if source in sample.lines_by_source:
            return sample.lines_by_source[source]
        return (sample.lines_read or 0) if len(self.sources) == 1 else 0

    def report(self, *, force: bool = False) -> None:
        now = time.time()
        for table, status in self.status.items():
            freshness = status.freshness_seconds(now)
            if freshness is not None:
                metrics.ONLINE_FRESHNESS.labels(table).set(freshness)
        if not force and time.monotonic() - self._last_report < self.options.report_every_s:
            return
        self._last_report = time.monotonic()
        sample = self._last_sample
        rates = ", ".join(f"{s} {self.rates.get(s, 0.0):,.0f}/s" for s in self.sources)
        lag = sample.watermark_lag_s if sample is not None else None
        self.progress(f"events: {self.lines_read if self.lines_read is not None else 'n/a'} read ({rates}); "
                      f"watermark lag {f'{lag:,.1f}s' if lag is not None else 'n/a'}")
        for table, status in self.status.items():
            last = f"{now - status.last_commit_at:.1f}s ago" if status.last_commit_at else "none yet"
            fresh = status.freshness_seconds(now)
            self.progress(f"  {table}: last commit {last} (v{status.delta_version}, {status.rows_committed:,} rows), "
                          f"online v{status.online_version} {status.rows_pushed:,} rows, freshness "
                          f"{f'{fresh:,.1f}s' if fresh is not None else 'n/a'}"
                          + (f", push pending: {status.push_error}" if status.push_error else ""))


def _tasks_not_running_yet(error: FlinkJobError) -> bool:
    return "is not being executed at the moment" in error.message or "not all required tasks" in error.message


def _describe(location: SourceLocation) -> str:
    if isinstance(location, FileSource):
        return f"{location.local_path or location.uri} (watched)"
    return f"topic {location.topic} on {location.bootstrap_servers}"


def _remove_older_savepoints(folder: Path, keep: Path) -> None:
    """A clean stop's savepoint supersedes every earlier one (a restart resumes from the newest)."""
    keep_name = Path(keep.as_posix().removeprefix("file:")).name
    for old in folder.glob("savepoint-*"):
        if old.name != keep_name:
            shutil.rmtree(old, ignore_errors=True)
