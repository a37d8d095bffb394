"""The serving metrics (Prometheus), exact names shared with the dashboard; one module so it can import them.

Workers are separate processes sharing the port, so the metrics use prometheus-client's multiprocess mode:
``feature-platform serve`` points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh folder before the workers start, each
worker writes its samples there, and ``GET /metrics`` (answered by whichever worker gets it) sums every worker's.
Without that variable (a single process, tests importing the module) they are ordinary in-process metrics.

Names: ``fp_serve_requests_total{route,code}``, ``fp_serve_request_duration_seconds{route}`` (histogram),
``fp_serve_feature_statuses_total{status}``, ``fp_serve_fallbacks_total{feature_view,feature,kind}``,
``fp_serve_shed_total{reason}`` (overload | rate_limit | deadline), ``fp_serve_in_flight``,
``fp_serve_version_requests_total{contract,version}`` (which major served an entity; read by rollouts).

Per major, for the rollout's serving gates (:mod:`pipelines.health.serve_signals` reads them as differences between
two scrapes): ``fp_serve_version_entities_total{contract,version,outcome}`` (each entity served, by outcome: ``present``
every requested value live, ``missing`` no live value at all, ``fallback`` a live row lacking some requested feature,
``error`` the store read failed or missed the deadline) and ``fp_serve_version_duration_seconds{contract,version}``
(histogram: the duration of each request in which that major served at least one entity).

Shadow reads (a rollout in ``shadow``: the candidate read beside the stable major, off the response path; see
:mod:`pipelines.serving.shadow`): ``fp_rollout_shadow_comparisons_total{contract,outcome}`` (per entity: ``match``,
``differ``, ``candidate_missing``, ``stable_missing``, ``both_missing``, ``error``),
``fp_rollout_shadow_differences_total{contract,feature,kind}`` (``different``, ``stable_only``, ``candidate_only``),
``fp_rollout_shadow_entities_total{contract,outcome}`` (what the candidate would have served, outcomes as above),
``fp_rollout_shadow_read_seconds{contract,version}`` (histogram, each side's read) and
``fp_rollout_shadow_dropped_total{contract}`` (entities not compared because the in-flight cap was reached).
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, values

if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    # prometheus-client picks its value class when first imported; the server's main process may have imported it
    # before it created the folder, and its workers are forked from it: pick again, before any metric exists.
    values.ValueClass = values.get_value_class()

#: Request latencies (seconds): sub-millisecond to a second, fine around the default 50 ms deadline.
_LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
REQUESTS = Counter("fp_serve_requests_total", "HTTP requests answered, by route and status code.", ["route", "code"])
REQUEST_DURATION = Histogram(
    "fp_serve_request_duration_seconds", "Time from a request's arrival to its answer, by route.", ["route"],
    buckets=_LATENCY_BUCKETS)
FEATURE_STATUSES = Counter("fp_serve_feature_statuses_total", "Feature values served, by Feast status.", ["status"])
FALLBACKS = Counter("fp_serve_fallbacks_total", "Values served by the degradation plan instead of a fresh stored "
                    "value, by view, feature and fallback kind.", ["feature_view", "feature", "kind"])
SHED = Counter("fp_serve_shed_total", "Requests not served normally: refused (overload: 503, rate_limit: 429) or "
               "answered with fallbacks after the deadline (deadline).", ["reason"])
IN_FLIGHT = Gauge("fp_serve_in_flight", "Requests being handled.", multiprocess_mode="livesum")
VERSION_REQUESTS = Counter("fp_serve_version_requests_total", "Entities served, by contract and the major version "
                           "(view) that served them.", ["contract", "version"])
VERSION_ENTITIES = Counter("fp_serve_version_entities_total", "Entities served, by contract, major version and "
                           "outcome (present | missing | fallback | error).", ["contract", "version", "outcome"])
VERSION_DURATION = Histogram("fp_serve_version_duration_seconds", "Duration of the requests in which a major "
                             "version served at least one entity.", ["contract", "version"], buckets=_LATENCY_BUCKETS)
SHADOW_COMPARISONS = Counter("fp_rollout_shadow_comparisons_total", "Entities read from both majors in shadow, by "
                             "comparison outcome.", ["contract", "outcome"])
SHADOW_DIFFERENCES = Counter("fp_rollout_shadow_differences_total", "Feature values differing between the stable "
                             "and the candidate major in shadow, by kind (different | stable_only | "
                             "candidate_only).", ["contract", "feature", "kind"])
SHADOW_ENTITIES = Counter("fp_rollout_shadow_entities_total", "What the candidate would have served in shadow, by "
                          "outcome (present | missing | fallback | error).", ["contract", "outcome"])
SHADOW_READ = Histogram("fp_rollout_shadow_read_seconds", "Store read time of each side of a shadow comparison.",
                        ["contract", "version"], buckets=_LATENCY_BUCKETS)
SHADOW_DROPPED = Counter("fp_rollout_shadow_dropped_total", "Entities not shadow-read because the worker's cap of "
                         "in-flight shadow reads was reached.", ["contract"])

ROUTES = ("/get-online-features", "/health", "/ready", "/metrics")


def render() -> bytes:
    """The metrics text of every worker (multiprocess mode) or of this process."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest()


def worker_exited(pid: int) -> None:
    """Drop a finished worker's live gauge samples (its counters stay, as Prometheus counters must)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)
