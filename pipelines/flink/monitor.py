"""Read a running job's metrics from the REST endpoint of its cluster (local mini-cluster or remote): lines, watermark.

Why REST: PyFlink's Table API has no accumulators, the bundled Flink ships no metrics reporter (JMX, Slf4j), and the
task metrics disappear when the job ends, so the run samples them while it polls for finished part files. The
mini-cluster serves REST on ``rest.bind-port``; :func:`free_port` picks one so concurrent runs do not collide. A remote
cluster serves the same endpoints at its own address (``FP_FLINK_REST_ADDRESS``).

* **lines read** = the sum over subtasks of every source operator's ``numRecordsOut`` (the raw format emits one
  record per line). A job restored from a checkpoint counts only what it read itself.
* **watermark** = the smallest ``currentInputWatermark`` of the vertices downstream of the sources (what the windows
  have seen); ``watermark_lag_s`` = wall clock − watermark (the event-time freshness of the output; on a replay of
  old events it is large by nature).

Monitoring never fails a run: any error gives ``None`` values.
"""

from __future__ import annotations

import json
import re
import socket
import time
import urllib.request
from dataclasses import dataclass, field
from typing import Any

_SOURCE_RECORDS = re.compile(r"^\d+\.Source__.*\.numRecordsOut$")
_NO_WATERMARK = -(2**63)
_SOURCE_TABLE = re.compile(r"(\w+)__source\b")  # the generated source table name is `<source>__source`


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def local_rest_url(port: int) -> str:
    """The REST URL of a mini-cluster started with :func:`rest_configuration` (``port``)."""
    return f"http://127.0.0.1:{port}"


def rest_configuration(port: int) -> dict[str, str]:
    return {"rest.bind-port": str(port), "rest.address": "127.0.0.1", "rest.bind-address": "127.0.0.1"}


@dataclass(frozen=True)
class JobMetrics:
    sampled_at: float
    lines_read: int | None
    watermark_ms: int | None
    #: Lines read per source name (from the source vertex's table name); empty when unknown.
    lines_by_source: dict[str, int] = field(default_factory=dict)

    @property
    def watermark_lag_s(self) -> float | None:
        return None if self.watermark_ms is None else round(self.sampled_at - self.watermark_ms / 1000, 3)

    def to_dict(self) -> dict[str, Any]:
        return {"lines_read": self.lines_read, "watermark_ms": self.watermark_ms,
                "watermark_lag_s": self.watermark_lag_s, "sampled_at": self.sampled_at}


class JobMonitor:
    """Samples one job's metrics over REST at ``rest_url`` (``timeout`` seconds per request)."""

    def __init__(self, rest_url: str, job_id: str, timeout: float = 2.0) -> None:
        self.base = f"{rest_url.rstrip('/')}/jobs/{job_id}"
        self.timeout = timeout
        self.last: JobMetrics | None = None

    def _get(self, path: str) -> Any:
        with urllib.request.urlopen(self.base + path, timeout=self.timeout) as response:
            return json.load(response)

    def sample(self) -> JobMetrics | None:
        """One sample (also kept as :attr:`last` when it has values); None when the endpoint does not answer."""
        try:
            vertices = self._get("")["vertices"]
            lines = 0
            by_source: dict[str, int] = {}
            watermarks = []
            for vertex in vertices:
                if vertex["name"].startswith("Source"):
                    names = [m["id"] for m in self._get(f"/vertices/{vertex['id']}/metrics")
                             if _SOURCE_RECORDS.match(m["id"])]
                    if names:
                        values = self._get(f"/vertices/{vertex['id']}/metrics?get={','.join(names)}")
                        read = sum(int(float(v["value"])) for v in values)
                        lines += read
                        named = _SOURCE_TABLE.search(vertex["name"])
                        if named:
                            by_source[named.group(1)] = by_source.get(named.group(1), 0) + read
                else:
                    marks = [int(float(m["value"])) for m in self._get(f"/vertices/{vertex['id']}/watermarks")]
                    if marks:
                        watermarks.append(min(marks))
        except (OSError, ValueError, KeyError):
            return None
        known = [mark for mark in watermarks if mark > _NO_WATERMARK]
        metrics = JobMetrics(time.time(), lines, min(known) if known and len(known) == len(watermarks) else None,
                             by_source)
        self.last = metrics
        return metrics
