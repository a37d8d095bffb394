"""Benchmark: latency from a window's end (the watermark passing it) to its rows being committed in Delta.

A live run, not a backlog: a feeder thread publishes small JSON-lines files into a folder every ``--publish-ms``, each
event stamped with the wall clock (UTC) at publication. The generated job of a small probe contract (tumbling
``--window-s`` windows, ``allowed_lateness`` ``--lateness-s``) reads the folder continuously (``FileSource`` with a
monitor interval), checkpoints every second (the CSV sink finishes its part files on each checkpoint), and the
exactly-once commit stage of :mod:`pipelines.delta.commit` is polled every ``--poll-ms`` while the job runs, as
:func:`pipelines.jobs.compute.run_contracts` does for bounded runs.

Event time = wall clock, so the watermark (max event time − lateness) can pass a window's end no earlier than
``window_end + lateness`` in wall time. The latency of a window is the wall time at which the commit stage returned
from the batch holding its last row, minus ``window_end + lateness``. It therefore covers: watermark emission and the
window firing, waiting for the next checkpoint to finish the part file, the commit stage noticing it (poll), and the
Delta commit. It excludes how fast Flink discovers new files (``--monitor-ms``) only in so far as events stamped
``t`` reach Flink after ``t``: that delay is reported separately as the feeder's cadence and is part of the figure.

Windows counted: those ending at least two window lengths after the job started (start-up is not steady state) and
whose ``window_end + lateness`` lies more than two checkpoint intervals before the stop (a window closer to the stop
may not be, or be only partly, committed when the job is cancelled: counting it would bias the figure either way).

The live run is repeated ``--runs`` times (default 3), each a new job on a new folder; p50/p90/p99/max are over all
counted windows of all runs together (per run too, in the results file):

    .venv/bin/python benchmarks/window_commit_latency.py --seconds 90 --runs 3

Raw results: benchmarks/results/window_commit_latency.json (every window's latency, per run and pooled, machine).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import _results

ROOT = Path(__file__).resolve().parent.parent

PROBE_CONTRACT = """\
name: latency_probe
version: 1.0.0
owner: platform@example.com
description: A tiny contract for the window-to-commit latency benchmark.
entity: {{name: key, join_keys: [key_id]}}
source:
  name: probe
  format: json
  event_time: event_ts
  allowed_lateness: {lateness}s
  schema: {{key_id: string, value: double, event_ts: timestamp}}
features:
  - {{name: events_{window}s, aggregation: count, window: {window}s, type: int64, description: Events in the window.}}
  - {{name: value_sum_{window}s, aggregation: sum, column: value, window: {window}s, type: double, description: Sum.}}
serving: {{online: false, ttl: 1h}}
sla: {{freshness: 1m, null_rate_max: 0.0}}
"""


def _feeder(folder: Path, stop: threading.Event, every_s: float, events_per_file: int, keys: int) -> list[float]:
    """Publish a file every ``every_s`` until ``stop``; returns the publication wall times."""
    published = []
    index = 0
    while not stop.is_set():
        now = datetime.now(UTC)
        stamp = now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"
        lines = "".join(f'{{"key_id":"k{(index * events_per_file + i) % keys}","value":{i}.5,"event_ts":"{stamp}"}}\n'
                        for i in range(events_per_file))
        hidden = folder / f".probe-{index:06d}.jsonl.tmp"
        hidden.write_text(lines)
        hidden.replace(folder / f"probe-{index:06d}.jsonl")
        published.append(time.time())
        index += 1
        stop.wait(every_s)
    return published


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def run_once(args: argparse.Namespace) -> dict[str, Any]:
    """One live run (module docstring); returns the counted windows' latencies and what was left out."""
    from deltalake import DeltaTable

    from pipelines.codegen.flink_sql import build_job_sql
    from pipelines.config import Settings
    from pipelines.contracts.load import load_contract
    from pipelines.delta.commit import CommitStage
    from pipelines.flink.checkpoints import checkpoint_configuration
    from pipelines.flink.environment import FlinkOptions, create_table_environment
    from pipelines.jobs.compute import _output_paths, commit_targets
    from pipelines.sources.location import FileSource

    work = Path(tempfile.mkdtemp(prefix="fp-latency-"))
    contract_file = work / "latency_probe.yaml"
    contract_file.write_text(PROBE_CONTRACT.format(window=args.window_s, lateness=args.lateness_s))
    contract = load_contract(contract_file).contract
    settings = Settings(data_dir=work / "data", parallelism=args.parallelism,
                        checkpoint_interval_ms=args.checkpoint_ms)
    run_dir = settings.flink_dir / "runs" / "latency"
    events = work / "events"
    events.mkdir()
    source = FileSource.local(events, monitor_interval=timedelta(milliseconds=args.monitor_ms))
    job_sql = build_job_sql([contract], {"probe": source}, {contract.table_name: _output_paths(run_dir,
                                                                                                 contract.table_name)})
    options = FlinkOptions(checkpoint_dir=run_dir / "checkpoints", parallelism=args.parallelism,
                           checkpoint_interval_ms=args.checkpoint_ms, jvm_heap=settings.jvm_heap)
    env = create_table_environment(options)
    for key, value in checkpoint_configuration(None).items():
        env.get_config().set(key, value)
    for statement in job_sql.ddl:
        env.execute_sql(statement)
    statements = env.create_statement_set()
    for insert in job_sql.inserts:
        statements.add_insert_sql(insert)

    stop = threading.Event()
    publications: list[float] = []
    feeder = threading.Thread(target=lambda: publications.extend(_feeder(
        events, stop, args.publish_ms / 1000, args.events_per_file, 50)), daemon=True)
    commit_done_at: dict[str, float] = {}
    result = statements.execute()
    client = result.get_job_client()
    feeder.start()
    started = time.time()
    stage = CommitStage(run_dir, commit_targets([contract], run_dir, settings), app_id="latency-benchmark",
                        config=settings.stage("delta-commit"))
    commit_seconds: list[float] = []
    try:
        with stage:
            while time.time() - started < args.seconds:
                before = time.perf_counter()
                record = stage.commit_finished(1)
                if record is not None:
                    commit_done_at[record.committed_at] = time.time()
                    commit_seconds.append(time.perf_counter() - before)
                time.sleep(args.poll_ms / 1000)
    finally:
        stopped = time.time()
        stop.set()
        feeder.join(timeout=5)
        client.cancel().result()

    table = DeltaTable(str(settings.delta_table_path(contract.table_name))).to_pandas()
    shutil.rmtree(work, ignore_errors=True)
    lateness = timedelta(seconds=args.lateness_s)
    first_full = datetime.fromtimestamp(started, UTC) + timedelta(seconds=args.window_s * 2)
    cutoff = datetime.fromtimestamp(stopped, UTC) - timedelta(milliseconds=2 * args.checkpoint_ms)
    latencies, early, late = [], 0, 0
    for window_end, rows in table.groupby("window_end"):
        end = window_end.to_pydatetime()
        if end < first_full:  # the first windows overlap job start-up: not a steady-state figure
            early += 1
            continue
        if end + lateness > cutoff:  # within two checkpoints of the stop: maybe cut off by the cancel
            late += 1
            continue
        last_commit = max(commit_done_at[ts.to_pydatetime().isoformat()] for ts in rows["ingested_at"].unique())
        latencies.append(last_commit - (end + lateness).timestamp())
    return {"latencies_s": latencies, "windows_committed": int(table["window_end"].nunique()),
            "left_out_start_up": early, "left_out_near_stop": late, "batches": len(commit_done_at),
            "files_published": len(publications), "commit_s": commit_seconds,
            "seconds": round(stopped - started, 1)}


def summary(latencies: list[float]) -> dict[str, float]:
    return {"windows": len(latencies), "p50_s": _percentile(latencies, 0.5), "p90_s": _percentile(latencies, 0.9),
            "p99_s": _percentile(latencies, 0.99), "max_s": max(latencies), "min_s": min(latencies)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=90.0, help="how long each live stream runs")
    parser.add_argument("--runs", type=int, default=3, help="live runs; percentiles over the windows of all runs")
    parser.add_argument("--window-s", type=int, default=2)
    parser.add_argument("--lateness-s", type=int, default=1)
    parser.add_argument("--checkpoint-ms", type=int, default=1000)
    parser.add_argument("--publish-ms", type=int, default=100)
    parser.add_argument("--monitor-ms", type=int, default=200)
    parser.add_argument("--poll-ms", type=int, default=100)
    parser.add_argument("--events-per-file", type=int, default=200)
    parser.add_argument("--parallelism", type=int, default=2)
    args = parser.parse_args()
    _results.start()

    from pipelines.resources import peak_memory_mib

    runs = []
    for index in range(args.runs):
        run = run_once(args)
        runs.append(run)
        counted = run["latencies_s"]
        print(f"run {index + 1}: {len(counted)} windows counted (left out: {run['left_out_start_up']} at start-up, "
              f"{run['left_out_near_stop']} near the stop)"
              + (f", p50 {_percentile(counted, 0.5):.2f}s p99 {_percentile(counted, 0.99):.2f}s" if counted else ""),
              flush=True)
    pooled = [latency for run in runs for latency in run["latencies_s"]]
    commits = [seconds for run in runs for seconds in run["commit_s"]]
    report: dict[str, Any] = {
        "commit_s_median": statistics.median(commits) if commits else None,
        "peak_memory_mib": peak_memory_mib(),
        "runs": [{**({k: v for k, v in run.items() if k != "commit_s"}),
                  **(summary(run["latencies_s"]) if run["latencies_s"] else {})} for run in runs],
    }
    if pooled:
        report["all_runs"] = summary(pooled)
        print(f"{len(pooled)} windows of {args.window_s}s over {args.runs} runs, checkpoint every {args.checkpoint_ms} "
              f"ms: window end → committed in Delta p50 {report['all_runs']['p50_s']:.2f}s  "
              f"p90 {report['all_runs']['p90_s']:.2f}s  p99 {report['all_runs']['p99_s']:.2f}s  "
              f"max {report['all_runs']['max_s']:.2f}s  (commit call median {report['commit_s_median']:.2f}s "
              f"over {len(commits)} batches)")
    else:
        print("no complete window was committed; run longer (--seconds)")
    print(f"peak memory: {report['peak_memory_mib']}")
    parameters = {key: value for key, value in vars(args).items()}
    _results.write("window_commit_latency", parameters, report)
    if not pooled:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
