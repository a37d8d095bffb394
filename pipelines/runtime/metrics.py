"""Runtime metrics: Prometheus families (process-wide, labelled by stage or limiter) and per-stage summaries.

Prometheus is the export format (``prometheus_client.generate_latest()`` or any ``/metrics`` endpoint on the default
registry shows them); :class:`StageMetrics` is the in-process view a job puts in its summary (``to_dict()``), with
exact p50/p99 latencies over the most recent calls, which a Prometheus histogram cannot give.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections import deque
from collections.abc import Iterator
from typing import Any

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

STAGE_ITEMS = Counter("fp_stage_items_total", "Items a stage finished successfully.", ["stage"])
STAGE_ERRORS = Counter(
    "fp_stage_errors_total", "Stage calls stopped by an item's terminal error or exhausted retries.", ["stage"]
)
STAGE_RETRIES = Counter("fp_stage_retries_total", "Retried attempts after a transient error.", ["stage"])
STAGE_TIMEOUTS = Counter("fp_stage_timeouts_total", "Stage calls that ended because a deadline passed.", ["stage"])
STAGE_QUEUE_DEPTH = Gauge("fp_stage_queue_depth", "Items submitted to a stage and not yet started.", ["stage"])
STAGE_IN_FLIGHT = Gauge("fp_stage_in_flight", "Items submitted to a stage and not yet handed back.", ["stage"])
STAGE_LATENCY = Histogram(
    "fp_stage_latency_seconds",
    "Time from a worker taking an item to its result (retries and limiter waits included).",
    ["stage"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
STAGE_STUCK_WORKERS = Counter(
    "fp_stage_stuck_workers_total", "Workers still busy after shutdown's drain and abort.", ["stage"]
)


class LimiterCounts:
    """One limiter's counters; the limiter updates them under its own lock (no Prometheus call per acquire)."""

    __slots__ = ("__weakref__", "acquired", "rejected", "wait_s", "waited")

    def __init__(self) -> None:
        self.acquired = 0
        self.rejected = 0
        self.waited = 0
        self.wait_s = 0.0


_LIVE: dict[int, tuple[str, LimiterCounts]] = {}
_RETIRED: dict[str, LimiterCounts] = {}
_LIMITERS_LOCK = threading.Lock()


def register_limiter(limiter: object, name: str) -> LimiterCounts:
    """Counters for a new limiter, exported as ``fp_limiter_*{limiter=name}`` (summed over limiters of that name).

    When the limiter is garbage-collected its counts move to a per-name total, so the exported counters never go down.
    """
    counts = LimiterCounts()
    key = id(counts)
    with _LIMITERS_LOCK:
        _LIVE[key] = (name, counts)
    weakref.finalize(limiter, _retire, key)
    return counts


def _retire(key: int) -> None:
    with _LIMITERS_LOCK:
        name, counts = _LIVE.pop(key)
        total = _RETIRED.setdefault(name, LimiterCounts())
        total.acquired += counts.acquired
        total.rejected += counts.rejected
        total.waited += counts.waited
        total.wait_s += counts.wait_s


class _LimiterCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        totals: dict[str, LimiterCounts] = {}
        with _LIMITERS_LOCK:
            for name, counts in [*_LIVE.values(), *_RETIRED.items()]:
                total = totals.setdefault(name, LimiterCounts())
                total.acquired += counts.acquired
                total.rejected += counts.rejected
                total.waited += counts.waited
                total.wait_s += counts.wait_s
        acquired = CounterMetricFamily("fp_limiter_acquired", "Admitted limiter acquisitions.", labels=["limiter"])
        rejected = CounterMetricFamily(
            "fp_limiter_rejections",
            "Requests refused (more than the burst, or not admissible before the deadline).",
            labels=["limiter"],
        )
        waited = CounterMetricFamily("fp_limiter_waits", "Acquisitions that had to wait.", labels=["limiter"])
        wait_s = CounterMetricFamily(
            "fp_limiter_wait_seconds", "Time spent waiting for the limiter.", labels=["limiter"]
        )
        for name, total in sorted(totals.items()):
            acquired.add_metric([name], total.acquired)
            rejected.add_metric([name], total.rejected)
            waited.add_metric([name], total.waited)
            wait_s.add_metric([name], total.wait_s)
        yield from (acquired, rejected, waited, wait_s)


REGISTRY.register(_LimiterCollector())

_LATENCY_WINDOW = 10_000


def _quantile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


class StageMetrics:
    """Counters of one stage (thread-safe), mirrored into the Prometheus families above."""

    def __init__(self, stage: str) -> None:
        self.stage = stage
        self._lock = threading.Lock()
        self.items = 0
        self.errors = 0
        self.retries = 0
        self.timeouts = 0
        self.stuck_workers = 0
        self.limiter_wait_s = 0.0
        self.limiter_rejections = 0
        self.queue_depth = 0
        self.max_queue_depth = 0
        self.in_flight = 0
        self._latencies: deque[float] = deque(maxlen=_LATENCY_WINDOW)
        self._first: float | None = None
        self._last: float | None = None
        self._m_items = STAGE_ITEMS.labels(stage)
        self._m_errors = STAGE_ERRORS.labels(stage)
        self._m_retries = STAGE_RETRIES.labels(stage)
        self._m_timeouts = STAGE_TIMEOUTS.labels(stage)
        self._m_queue = STAGE_QUEUE_DEPTH.labels(stage)
        self._m_in_flight = STAGE_IN_FLIGHT.labels(stage)
        self._m_latency = STAGE_LATENCY.labels(stage)
        self._m_stuck = STAGE_STUCK_WORKERS.labels(stage)

    # -- recording (called by the stage and its workers) ----------------------------------------------------------
    def submitted(self) -> None:
        with self._lock:
            if self._first is None:
                self._first = time.monotonic()
            self.queue_depth += 1
            self.in_flight += 1
            self.max_queue_depth = max(self.max_queue_depth, self.queue_depth)
        self._m_queue.inc()
        self._m_in_flight.inc()

    def started(self) -> None:
        with self._lock:
            self.queue_depth -= 1
        self._m_queue.dec()

    def handed_back(self, count: int = 1) -> None:
        with self._lock:
            self.in_flight -= count
        self._m_in_flight.dec(count)

    def dropped_queued(self, count: int) -> None:
        """Items that were cancelled before a worker took them."""
        if count:
            with self._lock:
                self.queue_depth -= count
            self._m_queue.dec(count)

    def succeeded(self, latency_s: float) -> None:
        with self._lock:
            self.items += 1
            self._latencies.append(latency_s)
            self._last = time.monotonic()
        self._m_items.inc()
        self._m_latency.observe(latency_s)

    def failed(self) -> None:
        with self._lock:
            self.errors += 1
        self._m_errors.inc()

    def retried(self) -> None:
        with self._lock:
            self.retries += 1
        self._m_retries.inc()

    def timed_out(self) -> None:
        with self._lock:
            self.timeouts += 1
        self._m_timeouts.inc()

    def stuck(self, count: int) -> None:
        if count:
            with self._lock:
                self.stuck_workers += count
            self._m_stuck.inc(count)

    def limiter_waited(self, seconds: float) -> None:
        if seconds > 0:
            with self._lock:
                self.limiter_wait_s += seconds

    def limiter_rejected(self) -> None:
        with self._lock:
            self.limiter_rejections += 1

    # -- reading --------------------------------------------------------------------------------------------------
    def latency_quantile(self, q: float) -> float | None:
        with self._lock:
            values = sorted(self._latencies)
        return _quantile(values, q)

    @property
    def throughput(self) -> float | None:
        """Items per second between the first submission and the last success."""
        with self._lock:
            if self._first is None or self._last is None or self._last <= self._first:
                return None
            return self.items / (self._last - self._first)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary for job reports."""
        with self._lock:
            values = sorted(self._latencies)
            summary: dict[str, Any] = {
                "stage": self.stage,
                "items": self.items,
                "errors": self.errors,
                "retries": self.retries,
                "timeouts": self.timeouts,
                "stuck_workers": self.stuck_workers,
                "limiter_wait_s": round(self.limiter_wait_s, 6),
                "limiter_rejections": self.limiter_rejections,
                "queue_depth": self.queue_depth,
                "max_queue_depth": self.max_queue_depth,
                "in_flight": self.in_flight,
            }
        p50, p99 = _quantile(values, 0.5), _quantile(values, 0.99)
        summary["latency_p50_s"] = None if p50 is None else round(p50, 6)
        summary["latency_p99_s"] = None if p99 is None else round(p99, 6)
        throughput = self.throughput
        summary["throughput_per_s"] = None if throughput is None else round(throughput, 3)
        return summary
