"""Serving-side signals read from ``serve``'s Prometheus endpoint: error rate and p99 latency.

Read only when ``FP_HEALTH__SERVE_METRICS_URL`` is set (serving is optional). The counters are cumulative since the
server started: the error rate is 5xx responses / all responses of ``fp_serve_requests_total``, the p99 the upper
bound of the first ``fp_serve_request_duration_seconds`` bucket holding 99 % of the requests (summed over routes).
"""

from __future__ import annotations

import math
import urllib.request
from collections.abc import Iterable

from pipelines.health.limits import HealthLimits
from pipelines.health.signals import Signal


def parse_serve_metrics(text: str) -> tuple[float, float, list[tuple[float, float]]]:
    """(all requests, 5xx requests, cumulative latency buckets ``(le, count)`` summed over routes)."""
    from prometheus_client.parser import text_string_to_metric_families

    total = errors = 0.0
    buckets: dict[float, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "fp_serve_requests_total":
                total += sample.value
                if str(sample.labels.get("code", "")).startswith("5"):
                    errors += sample.value
            elif sample.name == "fp_serve_request_duration_seconds_bucket":
                bound = float(sample.labels["le"])
                buckets[bound] = buckets.get(bound, 0.0) + sample.value
    return total, errors, sorted(buckets.items())


def p99_from_buckets(buckets: Iterable[tuple[float, float]]) -> float | None:
    ordered = list(buckets)
    if not ordered or ordered[-1][1] == 0:
        return None
    target = 0.99 * ordered[-1][1]
    return next(bound for bound, count in ordered if count >= target)


def serve_signals(url: str | None, limits: HealthLimits, timeout_s: float) -> list[Signal]:
    """``serve_error_rate`` and ``serve_latency_p99``; nothing when no URL is configured."""
    if not url:
        return []
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:  # operator-set URL
            text = response.read().decode("utf-8")
    except OSError as error:
        why = f"serving metrics at {url} unreadable: {error}"
        return [Signal.unknown("serve_error_rate", limits.error_rate, "share", why),
                Signal.unknown("serve_latency_p99", limits.latency_p99_s, "seconds", why)]
    total, errors, buckets = parse_serve_metrics(text)
    signals = [Signal.measured("serve_error_rate", errors / total if total else 0.0, limits.error_rate, "share",
                               f"{errors:.0f} of {total:.0f} responses were 5xx")]
    p99 = p99_from_buckets(buckets)
    if p99 is not None and not math.isinf(p99):
        signals.append(Signal.measured("serve_latency_p99", p99, limits.latency_p99_s, "seconds"))
    elif p99 is not None:
        signals.append(Signal("serve_latency_p99", math.inf, limits.latency_p99_s, "seconds",
                              "fail" if limits.latency_p99_s is not None else "ok", "above the largest bucket"))
    return signals
