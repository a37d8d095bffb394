"""A JVM profile of one Flink job, with Java 17's Flight Recorder: record around a call, summarise the samples.

The local mini-cluster runs inside PyFlink's gateway JVM (a child of this process), so a recording started on it with
``jcmd <pid> JFR.start`` just before a job and stopped right after covers that job only (the JVM is shared by every
job of the process). The summary reads the ``jdk.ExecutionSample`` events (``jfr print --json``; one sample of a
running Java thread every 10 ms with the ``profile`` settings) and counts:

* ``self``: the method on top of the stack (where the CPU was);
* ``threads``: the sampled thread, i.e. the Flink task (its chain of operators) or a system thread;
* ``areas``: a sample counts for the area of the first frame from the top of its stack that names one (``AREAS``:
  parsing, timestamps, row copies, the window operators, the generated Calc classes, network, sinks, checkpoints,
  job start), so the shares add up to 100 %: the innermost operator or library the CPU was in.
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

#: (marker, area): a sample counts for the area of the first frame, from the top of its stack, holding a marker
#: (a substring of "package.Class.method"); None = the generated Calc class itself (``StreamExecCalc$<n>``).
AREAS: tuple[tuple[str, str | None], ...] = (
    ("featureplatform.udf", "parse once: FP_ functions (Jackson tree)"),
    ("formats.json", "json format: parse (stock)"),
    ("DateTimeUtils", "timestamps: parse and format (DateTimeUtils)"),
    ("RowDataSerializer.copy", "row copies between chained operators (object reuse off)"),
    ("StringDataSerializer.copy", "row copies between chained operators (object reuse off)"),
    ("LocalWindowAggsHandler", "window: local accumulate (generated handler)"),
    ("GlobalWindowAggsHandler", "window: global merge and emit (generated handler)"),
    ("RecordsWindowBuffer", "window: buffers, combiners, operators"),
    ("AggCombiner", "window: buffers, combiners, operators"),
    ("WindowAggOperator", "window: buffers, combiners, operators"),
    ("WindowTableFunctionOperator", "window table function (hop assignment)"),
    ("WatermarkAssignerOperator", "watermark assigner"),
    ("StreamingFileWriter", "CSV part files (file sink)"),
    ("formats.csv", "CSV part files (file sink)"),
    ("connector.file.sink", "CSV part files (file sink)"),
    ("RecordWriter", "network out (serialise)"),
    ("StreamTaskNetworkInput", "network in (deserialise)"),
    ("StreamExecCalc$", None),
    ("featureplatform.flink.lines", "line reader (fp-lines)"),
    ("FileSourceRecordEmitter", "file source"),
    ("SourceReader", "file source"),
    ("heckpoint", "checkpoints"),
    ("codesplit", "job start: generated-code splitting and compiling"),
    ("janino", "job start: generated-code splitting and compiling"),
    ("planner", "job start: planning"),
    ("calcite", "job start: planning"),
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


def _area(frames: list[str]) -> str:
    for frame in frames:
        for marker, area in AREAS:
            if marker in frame:
                if area is not None:
                    return area
                found = re.search(r"StreamExecCalc\$\d+", frame)
                return f"generated Calc {found.group(0) if found else ''}".strip()
    return "other (JDK, unclassified)"


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
        by_area[_area(frames)] += 1

    def shares(counter: Counter[str], n: int) -> list[dict[str, Any]]:
        return [{"name": k, "samples": v, "share": round(v / total, 4)} for k, v in counter.most_common(n)]

    threads = shares(by_thread, top)
    for row in threads[:5]:  # what the busiest threads do: their own top methods
        row["top_self"] = shares(by_thread_self.get(row["name"], Counter()), 8)
    return {"samples": total, "top_self": shares(by_self, top), "threads": threads,
            "areas": shares(by_area, 30)}
