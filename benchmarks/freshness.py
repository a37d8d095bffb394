"""Benchmark: freshness of ``feature-platform stream``, from an event appended to the source to its window's value
readable online, over the watched events folder and over a real Kafka broker.

A live run per source kind, through the real command: ``feature-platform stream`` runs as a subprocess on a small
probe contract (tumbling ``--window-s`` windows, ``allowed_lateness`` ``--lateness-s``), checkpoints every
``--checkpoint-ms`` (1 s by default), commits to Delta and pushes into the SQLite online store. In this process:

* a feeder appends one event per key every ``--publish-ms`` (until the first value is online, one event of one
  key a second, so no backlog builds up while the stream starts), stamped with the wall clock (event time = append
  time): for files, a small JSON-lines file published atomically into the watched folder (watched every
  ``--watch-ms``); for Kafka, records produced and flushed to the topic;
* a reader asks the online store (Feast's ``get_online_features``, as a model would) for every key every
  ``--read-ms`` and records when each key's value of each window first became readable (its event timestamp is the
  window end; a window seen only through a later one counts as readable then: an upper bound).

Per appended event: ``latency`` = readable − appended. The target is stated on the window: the value is readable by
``window_end + allowed_lateness + 3 s`` (the watermark cannot pass a window earlier than ``window_end + lateness``), so
``excess`` = readable − (window_end + lateness) must have p99 ≤ 3 s. Windows counted: those ending at least two window
lengths after the first value was readable (start-up is not steady state) and at least ``--tail-s`` before the
feeder stopped (a later one may have no event after it to close it).

    .venv/bin/python benchmarks/freshness.py --seconds 60

Raw results: benchmarks/results/freshness.json (every counted window's excess, per-event latency percentiles, the
stream's own metrics, machine load).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import _results

ROOT = Path(__file__).resolve().parent.parent

PROBE_CONTRACT = """\
name: freshness_probe
version: 1.0.0
owner: platform@example.com
description: A tiny contract for the freshness benchmark.
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
serving: {{online: true, ttl: 1h}}
sla: {{freshness: 1m, null_rate_max: 0.0}}
"""


#: The feeder's pace until the first value is online (one event of one key).
WARM_UP_EVERY_S = 1.0


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def _stamp(now: datetime) -> str:
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


class Feeder:
    """Appends one event per key every ``every_s`` until stopped; remembers each append's wall time per key."""

    def __init__(self, kind: str, keys: int, every_s: float, folder: Path, kafka: tuple[str, str] | None) -> None:
        self.kind, self.keys, self.every_s, self.folder, self.kafka = kind, keys, every_s, folder, kafka
        self.appended: list[tuple[float, str]] = []  # (wall time, event_ts text) per append, every key
        self.stop = threading.Event()
        #: Until set, one event of one key every WARM_UP_EVERY_S: the stream starts slowly on a loaded machine, and a
        #: full-rate backlog built meanwhile would be measured instead of the pipeline's latency.
        self.full_rate = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        producer = None
        if self.kind == "kafka":
            from confluent_kafka import Producer

            producer = Producer({"bootstrap.servers": self.kafka[0], "linger.ms": 0})
        index = 0
        while not self.stop.is_set():
            now = datetime.now(UTC)
            stamp = _stamp(now)
            keys = self.keys if self.full_rate.is_set() else 1
            lines = [json.dumps({"key_id": f"k{key}", "value": key + 0.5, "event_ts": stamp}) for key in
                     range(keys)]
            if producer is not None:
                for line in lines:
                    producer.produce(self.kafka[1], value=line.encode())
                producer.flush(10)
            else:
                hidden = self.folder / f".probe-{index:07d}.jsonl.tmp"
                hidden.write_text("\n".join(lines) + "\n")
                hidden.replace(self.folder / f"probe-{index:07d}.jsonl")
            if self.full_rate.is_set():
                self.appended.append((time.time(), stamp))
            index += 1
            self.stop.wait(self.every_s if self.full_rate.is_set() else WARM_UP_EVERY_S)


class Reader:
    """Polls the online store for every key; records when each (key, window end) first became readable."""

    def __init__(self, settings: Any, contract: Any, keys: int, every_s: float) -> None:
        self.settings, self.contract, self.keys, self.every_s = settings, contract, keys, every_s
        self.first_seen: dict[tuple[str, float], float] = {}  # (key, window end epoch s) -> wall time
        self.reads = 0
        self.read_seconds: list[float] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        from pipelines.feast_sync.online import open_online_store, read_online

        store = None
        rows = [{"key_id": f"k{key}"} for key in range(self.keys)]
        feature = self.contract.features[0].name
        newest: dict[str, float] = {}
        while not self.stop.is_set():
            try:
                store = store or open_online_store(self.settings)
                before = time.perf_counter()
                values = read_online(store, self.contract, rows, include_event_timestamps=True)
                self.read_seconds.append(time.perf_counter() - before)
            except Exception:  # registry not applied yet, table not created yet: the stream is starting
                self.stop.wait(0.5)
                continue
            now = time.time()
            self.reads += 1
            for key_id, stamp in zip(values["key_id"], values[f"{feature}__ts"], strict=True):
                if stamp is None:
                    continue
                end = float(stamp)  # Feast gives the event timestamp (the window end) in epoch seconds
                if end > newest.get(key_id, 0.0):
                    newest[key_id] = end
                    self.first_seen.setdefault((key_id, end), now)
            self.stop.wait(self.every_s)


def run_once(kind: str, args: argparse.Namespace, work: Path, kafka: str | None) -> dict[str, Any]:
    from pipelines.config import Settings
    from pipelines.contracts.load import load_contract

    contracts = work / "contracts"
    contracts.mkdir(parents=True)
    (contracts / "freshness_probe.yaml").write_text(PROBE_CONTRACT.format(window=args.window_s,
                                                                          lateness=args.lateness_s))
    contract = load_contract(contracts / "freshness_probe.yaml").contract
    data = work / "data"
    settings = Settings(data_dir=data, contracts_dir=contracts)
    folder = settings.events_dir / "probe"
    folder.mkdir(parents=True)
    topic = f"probe-{kind}-{os.getpid()}"
    env = {**os.environ, "FP_DATA_DIR": str(data), "FP_CONTRACTS_DIR": str(contracts),
           "FP_CHECKPOINT_INTERVAL_MS": str(args.checkpoint_ms), "FP_PARALLELISM": str(args.parallelism),
           "FP_STREAM_WATCH_INTERVAL_MS": str(args.watch_ms), "FP_STREAM_SOURCE": kind}
    if kafka is not None:
        from pipelines.sources.kafka import create_topic

        create_topic(kafka, topic)
        env.update(FP_KAFKA_BOOTSTRAP_SERVERS=kafka, FP_KAFKA_TOPICS=json.dumps({"probe": topic}),
                   FP_KAFKA_GROUP_ID=topic)
    metrics_port = _free_port()
    log = work / f"stream-{kind}.log"
    with log.open("wb") as handle:
        stream = subprocess.Popen([sys.executable, "-c", "from pipelines.cli import app; app()", "stream",
                                   "--metrics-port", str(metrics_port)], env=env, cwd=ROOT, stdout=handle,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    feeder = Feeder(kind, args.keys, args.publish_ms / 1000, folder, (kafka, topic) if kafka else None)
    reader = Reader(settings, contract, args.keys, args.read_ms / 1000)
    metrics_text = ""
    try:
        feeder.thread.start()
        reader.thread.start()
        deadline = time.monotonic() + args.start_timeout_s
        while not reader.first_seen:
            if stream.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{kind}: the stream produced no online value (exit {stream.poll()}); see {log}")
            time.sleep(0.5)
        feeder.full_rate.set()
        ready = time.time()
        print(f"{kind}: first value online; full rate, measuring for {args.seconds:.0f}s", flush=True)
        time.sleep(args.seconds)
        feeding_stopped = time.time()
        time.sleep(args.tail_s)  # the last counted windows close and reach the store
        metrics_text = _metrics(metrics_port)
    finally:
        feeder.stop.set()
        reader.stop.set()
        feeder.thread.join(timeout=10)
        reader.thread.join(timeout=10)
        stream.send_signal(signal.SIGTERM)
        try:
            code = stream.wait(timeout=180)
        except subprocess.TimeoutExpired:
            stream.kill()
            code = stream.wait(timeout=30)
    window, lateness = args.window_s, args.lateness_s
    first_counted = ready + 2 * window
    last_counted = feeding_stopped - args.tail_s
    excess, latencies, missing = [], [], 0
    windows: dict[tuple[str, float], float] = {}
    for (key_id, end), seen in reader.first_seen.items():
        if first_counted <= end <= last_counted:
            windows[(key_id, end)] = seen
    seen_ends = sorted({end for (_key, end) in reader.first_seen})
    for key in range(args.keys):
        for end in (e for e in seen_ends if first_counted <= e <= last_counted):
            if (f"k{key}", end) not in windows:
                later = [seen for (k, e), seen in reader.first_seen.items() if k == f"k{key}" and e > end]
                if later:
                    windows[(f"k{key}", end)] = min(later)  # overwritten before a read: readable by then at most
                else:
                    missing += 1
    for (_key, end), seen in windows.items():
        excess.append(seen - (end + lateness))
    for appended_at, stamp in feeder.appended:
        event = datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
        end = (event // window + 1) * window
        if first_counted <= end <= last_counted:
            seen = [windows[(f"k{key}", end)] for key in range(args.keys) if (f"k{key}", end) in windows]
            latencies.extend(value - appended_at for value in seen)
    return {"kind": kind, "exit_code": code, "windows_counted": len(windows), "windows_missing": missing,
            "excess_s": [round(value, 3) for value in sorted(excess)],
            "excess": _summary(excess), "event_latency": _summary(latencies),
            "appends": len(feeder.appended), "online_reads": reader.reads,
            "online_read_s_median": _percentile(reader.read_seconds, 0.5) if reader.read_seconds else None,
            "stream_metrics": _selected(metrics_text), "log_tail": _tail(log)}


def _summary(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {"n": len(values), "p50_s": round(_percentile(values, 0.5), 3), "p90_s": round(_percentile(values, 0.9), 3),
            "p99_s": round(_percentile(values, 0.99), 3), "max_s": round(max(values), 3),
            "min_s": round(min(values), 3)}


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _metrics(port: int) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            return response.read().decode()
    except OSError:
        return ""


def _selected(text: str) -> list[str]:
    wanted = ("fp_stream_commit_latency_seconds_sum", "fp_stream_commit_latency_seconds_count",
              "fp_online_push_rows_total", "fp_stream_events_total", "fp_online_freshness_seconds",
              "fp_stream_source_lag_seconds")
    return [line for line in text.splitlines() if line.startswith(wanted)]


def _tail(log: Path) -> list[str]:
    lines = [line for line in log.read_text(errors="replace").splitlines()
             if line.startswith(("  ", "stream", "metrics")) and "Deprecat" not in line and not
             line.startswith("    ")]
    return lines[-8:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kinds", default="files,kafka", help="source kinds to measure, comma-separated")
    parser.add_argument("--seconds", type=float, default=60.0, help="measured seconds per source kind")
    parser.add_argument("--tail-s", type=float, default=8.0, help="seconds after the last counted window")
    parser.add_argument("--window-s", type=int, default=5)
    parser.add_argument("--lateness-s", type=int, default=1)
    parser.add_argument("--checkpoint-ms", type=int, default=1000)
    parser.add_argument("--publish-ms", type=int, default=100)
    parser.add_argument("--watch-ms", type=int, default=200)
    parser.add_argument("--read-ms", type=int, default=50)
    parser.add_argument("--keys", type=int, default=20)
    parser.add_argument("--parallelism", type=int, default=1)
    parser.add_argument("--start-timeout-s", type=float, default=300.0)
    args = parser.parse_args()
    _results.start()
    kinds = [kind.strip() for kind in args.kinds.split(",") if kind.strip()]
    runs = []
    broker = None
    work = Path(tempfile.mkdtemp(prefix="fp-freshness-"))
    try:
        for kind in kinds:
            kafka = None
            if kind == "kafka":
                from pipelines.testing.kafka_broker import start_kafka_broker

                broker = broker or start_kafka_broker(work / "kafka", ready_timeout_s=120)
                kafka = broker.bootstrap_servers
            try:
                run = run_once(kind, args, work / kind, kafka)
            except SystemExit as error:  # this kind failed to start: record it, still measure the others
                print(error, flush=True)
                runs.append({"kind": kind, "error": str(error), "excess": None, "event_latency": None,
                             "windows_counted": 0, "windows_missing": None, "exit_code": None})
                continue
            runs.append(run)
            excess = run["excess"]
            print(f"{kind}: {run['windows_counted']} windows counted, {run['windows_missing']} missing; excess over "
                  f"window end + lateness p50 {excess['p50_s'] if excess else 'n/a'}s p99 "
                  f"{excess['p99_s'] if excess else 'n/a'}s; event → online p50 "
                  f"{run['event_latency']['p50_s'] if run['event_latency'] else 'n/a'}s p99 "
                  f"{run['event_latency']['p99_s'] if run['event_latency'] else 'n/a'}s; exit {run['exit_code']}",
                  flush=True)
    finally:
        if broker is not None:
            broker.stop()
        shutil.rmtree(work, ignore_errors=True)
    target = 3.0
    report = {"target": f"p99 of (readable - (window_end + allowed_lateness)) <= {target} s",
              "runs": runs,
              "met": {run["kind"]: bool(run["excess"] and run["excess"]["p99_s"] <= target and
                                        run["windows_missing"] == 0 and run["exit_code"] == 0) for run in runs}}
    path = _results.write("freshness", vars(args), report)
    print(f"target met: {report['met']}; raw results in {path}")
    if not all(report["met"].values()):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
