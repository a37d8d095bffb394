"""The serving gates' interval arithmetic on metrics text as ``serve`` exposes it (a real prometheus_client registry
with the serving metric definitions renders it): per-series differences, restarts, filtering by contract and major,
and shadow reads in place of served entities."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from pipelines.health.serve_signals import interval_of, major_signals, parse_scrape


def exposition(served: dict[tuple[str, str, str], int], latencies: dict[tuple[str, str], list[float]],
               shadow: dict[str, int] | None = None) -> str:
    registry = CollectorRegistry()
    entities = Counter("fp_serve_version_entities_total", "", ["contract", "version", "outcome"], registry=registry)
    duration = Histogram("fp_serve_version_duration_seconds", "", ["contract", "version"], registry=registry,
                         buckets=(0.001, 0.01, 0.1, 1.0))
    shadow_entities = Counter("fp_rollout_shadow_entities_total", "", ["contract", "outcome"], registry=registry)
    for labels, value in served.items():
        entities.labels(*labels).inc(value)
    for labels, values in latencies.items():
        for value in values:
            duration.labels(*labels).observe(value)
    for outcome, value in (shadow or {}).items():
        shadow_entities.labels("c", outcome).inc(value)
    return generate_latest(registry).decode()


def by_name(signals):
    return {s.name: s for s in signals}


def test_only_the_interval_counts_per_contract_and_major() -> None:
    before = parse_scrape(exposition({("c", "2", "error"): 90, ("c", "2", "present"): 10, ("c", "1", "present"): 5},
                                     {("c", "2"): [0.5] * 100}))
    after = parse_scrape(exposition({("c", "2", "error"): 90, ("c", "2", "present"): 108, ("c", "2", "missing"): 2,
                                     ("c", "1", "present"): 500, ("c", "1", "missing"): 400,
                                     ("other", "2", "missing"): 50},
                                    {("c", "2"): [0.5] * 100 + [0.005] * 100, ("c", "1"): [0.9] * 10}))
    signals = by_name(major_signals(interval_of(after, before), "c", 2, shadow=False))
    assert signals["serve_error_rate"].value == 0.0  # 90 errors, all before the interval
    assert signals["serve_missing_rate"].value == 2 / 100
    assert signals["fallback_rate"].value == 2 / 100
    assert signals["serve_latency_p99"].value == 0.01  # the slow requests were before the interval


def test_a_counter_that_went_down_means_a_restart() -> None:
    before = parse_scrape(exposition({("c", "2", "present"): 1000}, {}))
    after = parse_scrape(exposition({("c", "2", "present"): 3, ("c", "2", "error"): 1}, {}))
    signals = by_name(major_signals(interval_of(after, before), "c", 2, shadow=False))
    assert signals["serve_error_rate"].value == 1 / 4


def test_shadow_reads_stand_for_the_candidate_and_no_traffic_is_unknown() -> None:
    scrape = parse_scrape(exposition({("c", "2", "present"): 7}, {}, {"present": 6, "fallback": 1, "missing": 3}))
    signals = by_name(major_signals(scrape, "c", 2, shadow=True))
    assert signals["serve_missing_rate"].value == 0.3 and signals["fallback_rate"].value == 0.4
    assert "shadow reads" in signals["serve_missing_rate"].detail
    quiet = major_signals(interval_of(scrape, scrape), "c", 2, shadow=False)
    assert {s.verdict for s in quiet} == {"unknown"}
