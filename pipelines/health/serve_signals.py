"""Serving-side signals read from ``serve``'s Prometheus endpoint.

Read only when ``FP_HEALTH__SERVE_METRICS_URL`` is set (serving is optional). Two readings:

* :func:`serve_signals` (``feature-platform health``): the whole server, cumulative since it started: the error rate
  is 5xx responses / all responses of ``fp_serve_requests_total``, the p99 the upper bound of the first
  ``fp_serve_request_duration_seconds`` bucket holding 99 % of the requests (summed over routes).
* :class:`ServingInterval` (the rollout's serving gates): one contract major, over the interval between two scrapes.
  Each evaluation scrapes the endpoint and subtracts the previous scrape, series by series (a series that went down
  means serve restarted: its new value is the whole interval's), so what happened before the interval weighs
  nothing. The first evaluation subtracts the scrape taken when the measurer was built (the controller's start); when
  that scrape failed, the first evaluation is inconclusive and becomes the baseline of the next.
  From the served entities of that major (``fp_serve_version_entities_total``, ``fp_serve_version_duration_seconds``)
  or, while the rollout is in shadow, from the shadow reads (``fp_rollout_shadow_entities_total``,
  ``fp_rollout_shadow_read_seconds``): ``serve_missing_rate`` = missing / entities, ``fallback_rate`` = (missing +
  fallback + error) / entities (an entity given at least one fallback value), ``serve_error_rate`` = error / entities
  and ``serve_latency_p99`` (bucket upper bound, as above). With no entity in the interval they cannot be measured.
"""

from __future__ import annotations

import math
import urllib.request
from collections.abc import Iterable
from typing import Literal

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


#: One scrape of the series the serving gates read: (sample name, sorted labels) -> value.
Scrape = dict[tuple[str, tuple[tuple[str, str], ...]], float]

_INTERVAL_SERIES = ("fp_serve_version_entities_total", "fp_serve_version_duration_seconds_bucket",
                    "fp_rollout_shadow_entities_total", "fp_rollout_shadow_read_seconds_bucket")


def parse_scrape(text: str) -> Scrape:
    """The per-major serving series and the shadow series of a metrics text."""
    from prometheus_client.parser import text_string_to_metric_families

    out: Scrape = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in _INTERVAL_SERIES:
                out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def interval_of(current: Scrape, previous: Scrape) -> Scrape:
    """What each series gained since ``previous``; a series that went down restarted, so it gained its new value."""
    out: Scrape = {}
    for key, value in current.items():
        before = previous.get(key, 0.0)
        out[key] = value - before if value >= before else value
    return out


def major_signals(interval: Scrape, contract: str, major: int, *, shadow: bool) -> list[Signal]:
    """``serve_missing_rate``, ``fallback_rate``, ``serve_error_rate`` and ``serve_latency_p99`` of one major over
    ``interval`` (limits are the caller's: the values are returned with no limit)."""
    entities_name, buckets_name = (("fp_rollout_shadow_entities_total", "fp_rollout_shadow_read_seconds_bucket")
                                   if shadow else
                                   ("fp_serve_version_entities_total", "fp_serve_version_duration_seconds_bucket"))
    version = str(major)
    outcomes: dict[str, float] = {}
    buckets: dict[float, float] = {}
    for (name, labels), value in interval.items():
        tags = dict(labels)
        if tags.get("contract") != contract:
            continue
        if name == entities_name and (shadow or tags.get("version") == version):
            outcomes[tags["outcome"]] = outcomes.get(tags["outcome"], 0.0) + value
        elif name == buckets_name and tags.get("version") == version:
            bound = float(tags["le"])
            buckets[bound] = buckets.get(bound, 0.0) + value
    total = sum(outcomes.values())
    source = "shadow reads" if shadow else "served entities"
    names = ("serve_missing_rate", "fallback_rate", "serve_error_rate", "serve_latency_p99")
    if total == 0:
        why = f"no entity of {contract} v{major} in the interval ({source})"
        units: tuple[Literal["share", "seconds"], ...] = ("share", "share", "share", "seconds")
        return [Signal.unknown(name, None, unit, why) for name, unit in zip(names, units, strict=True)]
    missing, error = outcomes.get("missing", 0.0), outcomes.get("error", 0.0)
    fallback = missing + error + outcomes.get("fallback", 0.0)
    of = f"of {total:.0f} entities of v{major} ({source})"
    signals = [Signal.measured("serve_missing_rate", missing / total, None, "share", f"{missing:.0f} missing {of}"),
               Signal.measured("fallback_rate", fallback / total, None, "share", f"{fallback:.0f} with fallbacks {of}"),
               Signal.measured("serve_error_rate", error / total, None, "share", f"{error:.0f} read errors {of}")]
    p99 = p99_from_buckets(sorted(buckets.items()))
    if p99 is None:
        signals.append(Signal.unknown("serve_latency_p99", None, "seconds", f"no latency sample ({source})"))
    else:
        detail = "above the largest bucket" if math.isinf(p99) else f"bucket bound ({source})"
        signals.append(Signal.measured("serve_latency_p99", p99, None, "seconds", detail))
    return signals


class ServingInterval:
    """Serving's signals of one major over the interval since the previous measurement of the same contract (see the
    module docstring). The baseline is scraped when this object is built: build it when the controller starts."""

    def __init__(self, url: str, timeout_s: float) -> None:
        self.url, self.timeout_s = url, timeout_s
        self._baseline, _ = self._scrape()
        self._previous: dict[str, Scrape] = {}

    def _scrape(self) -> tuple[Scrape | None, str]:
        try:
            with urllib.request.urlopen(self.url, timeout=self.timeout_s) as response:  # operator-set URL
                return parse_scrape(response.read().decode("utf-8")), ""
        except (OSError, ValueError) as error:
            return None, f"serving metrics at {self.url} unreadable: {error}"

    def signals(self, contract: str, major: int, *, shadow: bool) -> list[Signal]:
        """The four signals of ``contract`` v``major`` since the previous call for ``contract``."""
        current, why = self._scrape()
        previous = self._previous.get(contract, self._baseline)
        names = (("serve_missing_rate", "share"), ("fallback_rate", "share"), ("serve_error_rate", "share"),
                 ("serve_latency_p99", "seconds"))
        if current is None or previous is None:
            why = why or "no earlier scrape of serving's metrics to measure an interval from (first evaluation)"
            if current is not None:
                self._previous[contract] = current
            return [Signal.unknown(name, None, unit, why) for name, unit in names]  # type: ignore[arg-type]
        self._previous[contract] = current
        return major_signals(interval_of(current, previous), contract, major, shadow=shadow)
