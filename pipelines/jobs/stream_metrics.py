"""The Prometheus metrics of ``feature-platform stream``, defined once here (the dashboard check imports them).

They live on the default registry, beside the runtime's ``fp_stage_*`` families, so one ``/metrics`` endpoint
(:func:`serve_metrics`, ``--metrics-port``) shows the whole job. What each one measures:

* ``fp_stream_events_total{source}`` / ``fp_stream_events_per_second{source}``: lines (file lines or Kafka records)
  the Flink source operators read, summed over subtasks (the job's REST metrics), and their rate between two samples.
* ``fp_stream_source_lag_seconds{source}``: wall clock minus the job's event-time watermark (how far the windows are
  behind now; one watermark per job, so every source reports the same value).
* ``fp_stream_dead_letters_total{source,reason}``: lines dead-lettered, as committed to Delta.
* ``fp_stream_commit_latency_seconds{contract}``: from the oldest finished part file of a batch to its Delta commit.
* ``fp_stream_last_commit_timestamp_seconds{contract}``: the wall-clock time of the contract's last Delta commit.
* ``fp_online_push_rows_total{contract}``: entity rows the online-push stage wrote into the online store.
* ``fp_online_freshness_seconds{contract}``: wall clock minus the newest window end held online (what a model reading
  the feature sees; the contract's ``sla.freshness`` bounds it).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

STREAM_EVENTS = Counter("fp_stream_events_total", "Lines read by the stream's sources.", ["source"])
STREAM_EVENTS_PER_SECOND = Gauge("fp_stream_events_per_second", "Lines read per second (last sample).", ["source"])
STREAM_SOURCE_LAG = Gauge("fp_stream_source_lag_seconds", "Wall clock minus the job's event-time watermark.",
                          ["source"])
STREAM_DEAD_LETTERS = Counter("fp_stream_dead_letters_total", "Lines dead-lettered (committed to Delta).",
                              ["source", "reason"])
STREAM_COMMIT_LATENCY = Histogram(
    "fp_stream_commit_latency_seconds", "From the oldest finished part file of a batch to its Delta commit.",
    ["contract"], buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30, 60, 120))
STREAM_LAST_COMMIT = Gauge("fp_stream_last_commit_timestamp_seconds", "Wall-clock time of the last Delta commit.",
                           ["contract"])
ONLINE_PUSH_ROWS = Counter("fp_online_push_rows_total", "Entity rows written into the online store by the stream.",
                           ["contract"])
ONLINE_FRESHNESS = Gauge("fp_online_freshness_seconds", "Wall clock minus the newest window end held online.",
                         ["contract"])

ALL_METRICS = (STREAM_EVENTS, STREAM_EVENTS_PER_SECOND, STREAM_SOURCE_LAG, STREAM_DEAD_LETTERS, STREAM_COMMIT_LATENCY,
               STREAM_LAST_COMMIT, ONLINE_PUSH_ROWS, ONLINE_FRESHNESS)


def serve_metrics(port: int, host: str = "127.0.0.1") -> object:
    """Serve the default registry on ``http://host:port/metrics`` from a daemon thread; returns the server (its
    ``shutdown()`` stops it)."""
    server, _thread = start_http_server(port, addr=host)
    return server
