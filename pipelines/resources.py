"""Peak memory of this process and of the JVM it started (PyFlink's local mini-cluster runs in a child JVM).

The kernel keeps each process's high-water mark of resident memory (``VmHWM`` in ``/proc/<pid>/status``), so reading it
once at the end gives the true peak without a sampling thread. Read it before the JVM exits.
"""

from __future__ import annotations

from pathlib import Path

import psutil


def _peak_rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def peak_memory_mib() -> dict[str, float]:
    """``{"python": ..., "jvm": ..., "total": ...}`` peak resident memory in MiB (JVM: every java child process)."""
    me = psutil.Process()
    python = _peak_rss_mib(me.pid)
    jvm = 0.0
    for child in me.children(recursive=True):
        try:
            if "java" in child.name():
                jvm += _peak_rss_mib(child.pid)
        except psutil.Error:
            continue
    return {"python": round(python, 1), "jvm": round(jvm, 1), "total": round(python + jvm, 1)}
