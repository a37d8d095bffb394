"""A JVM profile of one Flink job, with Java 17's Flight Recorder: record around a call, summarise the samples.

The local mini-cluster runs inside PyFlink's gateway JVM (a child of this process), so a recording started on it with
``jcmd <pid> JFR.start`` just before a job and stopped right after covers that job only (the JVM is shared by every
job of the process). The summary reads the ``jdk.ExecutionSample`` events (``jfr print --json``; one sample of a
running Java thread every 10 ms with the ``profile`` settings) and counts:

* ``self``: the method on top of the stack (where the CPU was);
* ``threads``: the sampled thread, i.e. the Flink task (its chain of operators) or a system thread;
* ``areas``: a sample counts for the first area whose marker appears in its stack, from the top (so the shares add up
  to at most 100 %): JSON parsing, the window aggregation, state, serialisation and network, CSV and file writing,
  checkpoints, the line reader, generated code.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

#: area → markers (substrings of "package.Class.method") looked for from the top of each stack.
AREAS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("JSON parsing (Jackson, Flink JSON functions, FP_ functions, json format)",
     ("com.fasterxml.jackson", "jackson.core", "jackson.databind", "SqlJsonUtils", "featureplatform.udf",
      "formats.json")),
    ("checkpoints and snapshots", ("checkpoint", "Checkpoint", "snapshot")),
    ("state backend (heap / RocksDB)", ("runtime.state", "contrib.streaming.state", "rocksdb")),
    ("window aggregation (slices, accumulators, timers)", ("operators.window", "operators.aggregate",
                                                           "WindowAgg", "SliceAssigner", "InternalTimer", "AggsHandler",
                                                           "aggregate.window")),
    ("CSV and file sink", ("formats.csv", "connector.file.sink", "filesystem", "FileWriter", "PartFile",
                           "jackson.dataformat.csv")),
    ("line reader and file source", ("featureplatform.lines", "connector.file.src", "LineReader",
                                     "StreamFormat", "InputStreamReader")),
    ("serialisation and network", ("runtime.io.network", "typeutils", "TypeSerializer", "RecordWriter",
                                   "serializ", "BinaryRow", "DataOutput", "DataInput", "io.network")),
    ("generated SQL code (calc, casts, filters)", ("GeneratedClass", "StreamExecCalc", "Calc$", "Projection$",
                                                   "table.runtime", "table.data", "TimestampData", "StringData",
                                                   "DateTimeUtils")),
)


def gateway_jvm() -> int | None:
    """The pid of this process's Java child (PyFlink's gateway, which runs the mini-cluster), if any."""
    for child in psutil.Process().children(recursive=True):
        try:
            if "java" in child.name():
                return child.pid
        except psutil.Error:
            continue
    return None


def _jcmd(pid: int, *args: str) -> None:
    jcmd = shutil.which("jcmd")
    if jcmd is None:
        raise RuntimeError("jcmd is not on PATH (a JDK 17 is needed to profile)")
    subprocess.run([jcmd, str(pid), *args], check=True, capture_output=True, text=True, timeout=120)


def recorded(label: str, out: Path, fn: Callable[[], Any]) -> tuple[Any, Path]:
    """Run ``fn`` under a Flight Recording of the gateway JVM written to ``out``; returns fn's result and the file.

    The JVM must already be running (run one job first): the recording starts just before ``fn``.
    """
    pid = gateway_jvm()
    if pid is None:
        raise RuntimeError("no gateway JVM to profile: run a Flink job in this process first")
    name = re.sub(r"\W+", "_", label)
    _jcmd(pid, "JFR.start", f"name={name}", "settings=profile")
    try:
        result = fn()
    finally:
        _jcmd(pid, "JFR.stop", f"name={name}", f"filename={out}")
    for _ in range(50):  # the file is written by the JVM when the dump completes
        if out.exists() and out.stat().st_size > 0:
            break
        time.sleep(0.1)
    return result, out


def _frame_name(frame: dict[str, Any]) -> str:
    method = frame.get("method", {})
    owner = method.get("type", {}).get("name", "?")
    return f"{owner}.{method.get('name', '?')}".replace("/", ".")


def _thread_name(name: str) -> str:
    """A task thread's name without its subtask suffix, shortened (the chain of operators is the useful part)."""
    name = re.sub(r"\s*\(\d+/\d+\)(#\d+)?$", "", name or "?")
    return name if len(name) <= 160 else name[:157] + "..."


def summarise(recording: Path, top: int = 15) -> dict[str, Any]:
    """Shares of the ``jdk.ExecutionSample`` events: top methods by self samples, threads, areas (module doc)."""
    jfr = shutil.which("jfr")
    if jfr is None:
        raise RuntimeError("jfr is not on PATH (a JDK 17 is needed to read the recording)")
    done = subprocess.run([jfr, "print", "--json", "--stack-depth", "64", "--events", "jdk.ExecutionSample",
                           str(recording)], check=True, capture_output=True, text=True, timeout=600)
    events = json.loads(done.stdout)["recording"]["events"]
    total = len(events)
    by_self: Counter[str] = Counter()
    by_thread: Counter[str] = Counter()
    by_area: Counter[str] = Counter()
    by_thread_self: dict[str, Counter[str]] = {}
    for event in events:
        values = event.get("values", {})
        frames = [_frame_name(f) for f in (values.get("stackTrace") or {}).get("frames", [])]
        thread = (values.get("sampledThread") or {}).get("javaName") or "?"
        by_thread[_thread_name(thread)] += 1
        if frames:
            by_self[frames[0]] += 1
            by_thread_self.setdefault(_thread_name(thread), Counter())[frames[0]] += 1
        area = next((name for frame in frames for name, markers in AREAS if any(m in frame for m in markers)),
                    "other (JDK, unclassified)")
        by_area[area] += 1

    def shares(counter: Counter[str], n: int) -> list[dict[str, Any]]:
        return [{"name": k, "samples": v, "share": round(v / total, 4)} for k, v in counter.most_common(n)]

    threads = shares(by_thread, top)
    for row in threads[:5]:  # what the busiest threads do: their own top methods
        row["top_self"] = shares(by_thread_self.get(row["name"], Counter()), 8)
    return {"samples": total, "top_self": shares(by_self, top), "threads": threads,
            "areas": shares(by_area, len(AREAS) + 1)}
