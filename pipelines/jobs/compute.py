"""Compute contracts: sources → one Flink job ⇄ the commit stage → Delta, resumable; returns a :class:`RunSummary`.

Every run has its own folder under ``settings.flink_dir / "runs" / <run id>`` (checkpoints, window rows, dead letters,
the commit ledger), so runs never read each other's part files. Exactly once (docs/exactly-once.md):

* Flink checkpoints every ``settings.checkpoint_interval_ms`` into a retained checkpoint directory; its file sink
  finishes part files on each completed checkpoint.
* While the job runs, the commit stage (:mod:`pipelines.delta.commit`) polls for finished part files and commits them
  in numbered batches (write-ahead plan, Delta ``txn`` action per batch), so rows land in Delta during the job.
* Calling :func:`run_contracts` again with the same ``run_id`` after a crash resumes: batches planned before the crash
  are finished (tables that already hold them skip them), and the Flink job restarts from the newest retained
  checkpoint (not from the beginning), unless it had finished, in which case only the remaining files are committed.
* On a remote cluster (``FP_FLINK_TARGET=remote``, docs/cluster.md) the job runs there and the run reads its part
  files from the shared run folder, unchanged. The cluster outlives a crashed client, so a resumed run first cancels
  the job an earlier attempt left running (it would write beside the restarted one), and a run that stops on an
  error cancels its job. A lost TaskManager is the cluster's business: the job restarts from its newest checkpoint
  under the bounded restart strategy, and the run just keeps polling (RESTARTING is not terminal).

The summary proves completeness per contract over the whole run (all attempts): accepted events + dead letters ==
lines in the input (``balanced``). Accepted events are the sum of the window rows' hidden ``_accepted_in_step``
column, which the commit stage reads and keeps out of Delta.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from pipelines.codegen.flink_sql import JobSql, OutputPaths, build_job_sql
from pipelines.config import Settings
from pipelines.contracts.model import Contract
from pipelines.delta import dead_letters
from pipelines.delta.commit import CommitStage, CommitTarget, dead_letter_target, feature_target
from pipelines.delta.ledger import crash_point
from pipelines.errors import UsageError
from pipelines.flink.checkpoints import latest_checkpoint
from pipelines.flink.cluster import ClusterRest, ClusterUnreachableError, UnknownJobError
from pipelines.flink.environment import FlinkOptions, flink_options
from pipelines.flink.job import FlinkJobError
from pipelines.flink.monitor import JobMetrics
from pipelines.flink.running import TERMINAL_STATES, RunningJob, start_job, stop_orphaned_jvm
from pipelines.jobs.compute_summary import RunSummary, summarise
from pipelines.jobs.run_state import FlinkAttempt, RunState, load_run_state, save_run_state
from pipelines.jvm.line_format import line_reader
from pipelines.sources.location import KafkaSource, SourceLocation
from pipelines.sources.resolve import resolve_bounded_sources

Progress = Callable[[str], None]

#: How often the run polls the job's status, its metrics and the finished part files.
POLL_SECONDS = 0.5
#: How long a remote cluster's REST API may stay silent before the run gives up on its job.
CLUSTER_SILENCE_SECONDS = 60.0


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
        raise UsageError(f"no events folder for source(s): {sorted(missing)}")
    state = load_run_state(run_dir, run_id)
    wanted = {name: _repinned(events_dir_per_source[name], state.pinned_offsets.get(name)) for name in sources}
    resolved = resolve_bounded_sources(wanted)
    _remember_pins(state, resolved.locations, run_dir)
    outputs = {c.table_name: _output_paths(run_dir, c.table_name) for c in contracts}
    job_sql = build_job_sql(contracts, resolved.locations, outputs, line_format=line_reader().format,
                            max_line_bytes=settings.max_line_bytes)
    input_lines = dict(resolved.input_lines)
    options = flink_options(settings, run_dir / "checkpoints", jars=resolved.jars,
                            idle_timeout=None)  # bounded sources: see environment.py

    for earlier in state.attempts:
        if earlier.jvm_pid is not None:
            stop_orphaned_jvm(earlier.jvm_pid)
    if options.cluster is not None and not state.flink_finished \
            and _stop_earlier_jobs(ClusterRest(options.cluster.rest_url), state, say):
        state.flink_finished = True  # it finished after its client died: its part files are complete, commit them
        save_run_state(run_dir, state)
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
        if state.attempts and not state.flink_finished:
            with commit_clock:
                _detect_finished_job(contracts, settings, stage, state, input_lines, run_dir, say)
        if not state.flink_finished:
            restore = latest_checkpoint(options.checkpoint_dir)
            say(f"flink: attempt {attempt}, {len(contracts)} contract(s) over {sum(input_lines.values())} input "
                f"line(s)" + (f", resuming from {restore.parent.name}/{restore.name}" if restore else ""))
            flink_started = time.perf_counter()
            try:
                job_id = _run_flink_and_commit(job_sql, options, restore, state, run_dir, stage, commit_clock, say,
                                               settings.test_crash_at)
            except FlinkJobError as error:  # name the run; batches committed before the failure stay in Delta
                raise FlinkJobError(error.message, run_id=run_id, stage="flink",
                                    hint="batches committed before the failure stay in Delta; fix the cause and run "
                                         "again (run_contracts with this run id resumes from its checkpoint)") \
                    from error
            flink_seconds = time.perf_counter() - flink_started
        with commit_clock:
            stage.commit_finished(attempt)
    finished = time.perf_counter()
    # the stage's ledger: it wrote the plans, and a Ledger keeps the plans it read once
    return summarise(contracts, settings, stage.ledger, load_run_state(run_dir, run_id), input_lines, run_dir, job_id,
                      flink_seconds, commit_clock.seconds, finished - started)


def _detect_finished_job(contracts: Sequence[Contract], settings: Settings, stage: CommitStage, state: RunState,
                         input_lines: Mapping[str, int], run_dir: Path, say: Progress) -> None:
    """Mark the run's Flink job finished when an earlier attempt's job FINISHED but its client died before saying so.

    A finished job discards its retained checkpoints, so a restart trusting the checkpoint folder finds either none
    (and reads the input again from the start) or an older one the mini-cluster left on disk (and could read the tail
    again): the lines after it would be dead-lettered, and their windows emitted, twice.
    A finished job renamed all its part files before it ended, so when the committed batches and the finished files
    not yet committed account for every input line (accepted or dead-lettered, for every contract), its output is
    complete; an unfinished job cannot account for them all. The files are committed after this, as usual.
    """
    committed = summarise(contracts, settings, stage.ledger, state, input_lines, run_dir, None, 0.0, 0.0, 0.0)
    pending = stage.unclaimed_events()
    if any(table.events_read + pending[table.table] != table.input_lines for table in committed.tables):
        return
    state.flink_finished = True
    save_run_state(run_dir, state)
    say(f"flink: the job of attempt {state.attempts[-1].number} had finished (its part files account for every "
        "input line); it is not run again")


def _repinned(location: Path | SourceLocation, pins: dict[str, dict[str, int]] | None) -> Path | SourceLocation:
    """A Kafka source of a resumed run, pinned to the offsets its first attempt read (``run.json``)."""
    if pins is None or not isinstance(location, KafkaSource):
        return location
    return replace(location, startup_mode="specific-offsets", bounded_mode="specific-offsets",
                   start_offsets={int(p): o for p, o in pins["start"].items()},
                   stop_offsets={int(p): o for p, o in pins["stop"].items()})


def _remember_pins(state: RunState, locations: Mapping[str, SourceLocation], run_dir: Path) -> None:
    """Save the pinned offsets of every Kafka source with the run, once (the first attempt's pins stay)."""
    fresh = {name: {"start": {str(p): o for p, o in location.start_offsets.items()},
                    "stop": {str(p): o for p, o in location.stop_offsets.items()}}
             for name, location in locations.items()
             if isinstance(location, KafkaSource) and location.start_offsets is not None
             and location.stop_offsets is not None and name not in state.pinned_offsets}
    if fresh:
        state.pinned_offsets.update(fresh)
        save_run_state(run_dir, state)


class _Stopwatch:
    """Adds up the time spent inside ``with`` blocks."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def __enter__(self) -> None:
        self._started = time.perf_counter()

    def __exit__(self, *_exc: object) -> None:
        self.seconds += time.perf_counter() - self._started


def _run_flink_and_commit(job_sql: JobSql, options: FlinkOptions, restore: Path | None, state: RunState,
                          run_dir: Path, stage: CommitStage, commit_clock: _Stopwatch, say: Progress,
                          crash_at: str | None) -> str:
    """Start the job (restored from ``restore``), commit finished files while it runs, return its job id."""
    job = start_job(job_sql, options, restore)
    attempt = FlinkAttempt(number=len(state.attempts) + 1, started_at=datetime.now(UTC).isoformat(),
                           restored_from=str(restore) if restore else None, job_id=job.job_id, jvm_pid=job.jvm_pid)
    state.attempts.append(attempt)
    save_run_state(run_dir, state)
    try:
        _poll_and_commit(job, options, attempt, state, stage, commit_clock, crash_at)
    except BaseException:  # an error or an interrupt here: a job on a cluster would run on without us
        if options.cluster is not None:
            _cancel_quietly(job.cancel)
        raise
    state.flink_finished = True
    save_run_state(run_dir, state)
    say(f"flink: job {job.job_id} finished; it read {attempt.source_records_read} line(s)")
    crash_point("flink-finished", crash_at)
    return job.job_id


def _poll_and_commit(job: RunningJob, options: FlinkOptions, attempt: FlinkAttempt, state: RunState,
                     stage: CommitStage, commit_clock: _Stopwatch, crash_at: str | None) -> None:
    """Poll the job until it ends, committing finished part files meanwhile; raise unless it FINISHED."""
    committed = 0
    silent_since: float | None = None
    while True:
        try:
            status = job.status()
            silent_since = None
        except ClusterUnreachableError:  # a REST hiccup (a busy JobManager) is not the job's failure
            silent_since = silent_since or time.monotonic()
            if time.monotonic() - silent_since > CLUSTER_SILENCE_SECONDS:
                raise
            status = "UNKNOWN"
        sample = job.sample()
        if sample is not None and sample.lines_read is not None:
            attempt.source_records_read = sample.lines_read
            _remember(state, sample)
        with commit_clock:
            committed += stage.commit_finished(attempt.number) is not None
        if status == "RUNNING" and committed and latest_checkpoint(options.checkpoint_dir) is not None:
            crash_point("flink-running", crash_at)
        if status in TERMINAL_STATES:
            if status == "FINISHED":
                crash_point("flink-ended", crash_at)
            break
        time.sleep(POLL_SECONDS)
    if status != "FINISHED":
        raise FlinkJobError(f"the Flink job ended {status}")


def _stop_earlier_jobs(cluster: ClusterRest, state: RunState, say: Progress) -> bool:
    """Cancel the jobs earlier attempts of this run left running on the cluster (a crashed client does not stop
    them, and they would write beside the restarted job); True when the newest one had FINISHED meanwhile."""
    finished = False
    for earlier in state.attempts:
        if earlier.job_id is None:
            continue
        try:
            ended = cluster.cancel(earlier.job_id)
        except UnknownJobError:  # a restarted cluster forgot it: it runs nowhere
            continue
        finished = ended == "FINISHED"
        say(f"flink: job {earlier.job_id} of attempt {earlier.number} on the cluster is {ended}")
    return finished


def _cancel_quietly(cancel: Callable[[], None]) -> None:
    try:
        cancel()
    except Exception:  # cancelling is best effort; the original error is the one to report
        return


def _remember(state: RunState, sample: JobMetrics) -> None:
    """Keep the newest known values (the watermark is unknown until the first one passes)."""
    state.metrics = {**state.metrics, **{k: v for k, v in sample.to_dict().items() if v is not None}}
