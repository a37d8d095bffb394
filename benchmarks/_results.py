"""Raw results of a benchmark: machine information, parameters, every repetition, medians → ``benchmarks/results``.

Every benchmark script calls :func:`start` first (load average at start) and :func:`write` at the end; the file is
``benchmarks/results/<benchmark>.json`` and also holds the load average at the end, ``nproc``, the Python and Java
versions, the command line and the time of the run.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
_started: dict[str, Any] = {}


def _java_version() -> str | None:
    java_home = os.environ.get("JAVA_HOME")
    java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
    if java is None:
        return None
    try:
        done = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30, check=False)
    except OSError:
        return None
    lines = (done.stderr or done.stdout).strip().splitlines()
    return lines[0] if lines else None


def start() -> None:
    """Remember the load average and the time at the start of the benchmark."""
    _started.update(load_average_start=list(os.getloadavg()), started_at=datetime.now(UTC).isoformat(),
                    _t0=time.perf_counter())


def machine() -> dict[str, Any]:
    return {"nproc": os.cpu_count(), "cpus_allowed": len(os.sched_getaffinity(0)),
            "python": sys.version.split()[0], "java": _java_version(), "platform": platform.platform()}


def write(benchmark: str, parameters: dict[str, Any], results: dict[str, Any]) -> Path:
    """Write ``benchmarks/results/<benchmark>.json``; returns its path."""
    document = {
        "benchmark": benchmark,
        "command": " ".join([".venv/bin/python", f"benchmarks/{Path(sys.argv[0]).name}", *sys.argv[1:]]),
        "started_at": _started.get("started_at"),
        "wall_s": round(time.perf_counter() - _started["_t0"], 1) if "_t0" in _started else None,
        "machine": {**machine(), "load_average_start": _started.get("load_average_start"),
                    "load_average_end": list(os.getloadavg())},
        "parameters": parameters,
        "results": results,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{benchmark}.json"
    out.write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"raw results: {out.relative_to(RESULTS.parent.parent)}")
    return out
