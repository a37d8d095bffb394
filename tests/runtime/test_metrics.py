"""Metrics: a stage's summary for job reports and the Prometheus export (stage and limiter families)."""

from __future__ import annotations

import gc
import random

from prometheus_client import REGISTRY, generate_latest

from pipelines.runtime import HybridLimiter, RetryPolicy, Stage, StageConfig, TransientError


def _value(name: str, **labels: str) -> float:
    value = REGISTRY.get_sample_value(name, labels)
    return 0.0 if value is None else value


def test_stage_summary_and_prometheus_export_agree() -> None:
    seen: set[int] = set()

    def once_busy(x: int) -> int:
        if x not in seen:
            seen.add(x)
            if x % 4 == 0:
                raise TransientError("busy")
        return x

    retry = RetryPolicy(max_attempts=3, base_delay=0.001, max_delay=0.002, rng=random.Random(3))
    config = StageConfig(workers=1, rate=1_000_000, concurrency=1)
    with Stage("metrics-demo", once_busy, kind="thread", config=config, retry=retry) as stage:
        assert list(stage.map(range(20))) == list(range(20))
    summary = stage.metrics.to_dict()
    assert summary["items"] == 20 and summary["retries"] == 5 and summary["errors"] == 0
    assert summary["queue_depth"] == 0 and summary["in_flight"] == 0 and summary["max_queue_depth"] >= 1
    assert summary["latency_p50_s"] <= summary["latency_p99_s"] and summary["throughput_per_s"] > 0
    assert _value("fp_stage_items_total", stage="metrics-demo") == 20
    assert _value("fp_stage_retries_total", stage="metrics-demo") == 5
    assert _value("fp_stage_latency_seconds_count", stage="metrics-demo") == 20
    assert _value("fp_limiter_acquired_total", limiter="metrics-demo") == 25  # every attempt passes the limiter
    text = generate_latest().decode()
    assert 'fp_stage_queue_depth{stage="metrics-demo"} 0.0' in text


def test_limiter_counters_never_go_down_when_a_limiter_is_gone() -> None:
    limiter = HybridLimiter(None, max_concurrency=2, name="short-lived")
    for _ in range(3):
        with limiter.acquire():
            pass
    before = _value("fp_limiter_acquired_total", limiter="short-lived")
    assert before >= 3
    del limiter
    gc.collect()
    assert _value("fp_limiter_acquired_total", limiter="short-lived") == before
