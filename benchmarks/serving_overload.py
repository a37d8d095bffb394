"""Benchmark: ``feature-platform serve`` offered twice the load it can carry: the requests it admits keep their
latency, the rest are shed at once with 503 (or 429), and nothing answers 500.

Per store (SQLite, Redis), on the same data as ``benchmarks/serving.py`` (1 entity x 5 features per request):

1. capacity: requests/s with ``wrk`` at 16 connections (median of ``--repeat`` runs);
2. unloaded latency: ``hey`` offering a quarter of that capacity (``-c 4``, a fixed rate per connection): p99 of the
   answers;
3. overload: ``hey`` offering ``--factor`` (2) x capacity from ``--clients`` connections, each at a fixed rate: every
   answer's status and latency (``hey -o csv``): the p99 of the admitted (200) answers, how many were shed (503 /
   429) and how fast, and how many failed (500, or a connection error).

Pass: no 500; admitted p99 <= 3 x the unloaded p99; some requests shed. The in-flight bound per worker is
``--max-in-flight`` (FP_SERVE__MAX_IN_FLIGHT). Load generators and servers share the 2 cores: the load average is
recorded with the results.

    .venv/bin/python benchmarks/serving_overload.py --seconds 10

Raw results: benchmarks/results/serving_overload.json.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _results
from serving import body_of, build_stores, check_equal_self, env_of, run_wrk

from pipelines.testing.redis_server import RedisServer
from pipelines.testing.serve_process import ServeProcess


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def run_hey(url: str, body_file: Path, *, clients: int, rate_per_client: float, seconds: int) -> dict[str, Any]:
    """``hey`` at ``clients`` x ``rate_per_client`` requests/s for ``seconds``: every answer's status and latency."""
    done = subprocess.run(["hey", "-z", f"{seconds}s", "-c", str(clients), "-q", f"{rate_per_client:.2f}",
                           "-m", "POST", "-T", "application/json", "-D", str(body_file), "-t", "10", "-o", "csv",
                           url + "/get-online-features"], capture_output=True, text=True, timeout=seconds + 120,
                          check=True)
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    by_status: dict[str, list[float]] = {}
    for row in rows:
        by_status.setdefault(row["status-code"], []).append(float(row["response-time"]) * 1000)
    ok = by_status.get("200", [])
    shed = by_status.get("503", []) + by_status.get("429", [])
    answered = sum(len(v) for v in by_status.values())
    return {"offered_rps": round(clients * rate_per_client, 1), "answered": answered,
            "answered_rps": round(answered / seconds, 1), "status_counts": {k: len(v) for k, v in by_status.items()},
            "admitted_p50_ms": percentile(ok, 0.5), "admitted_p99_ms": percentile(ok, 0.99),
            "shed_p99_ms": percentile(shed, 0.99), "shed": len(shed),
            "errors": answered - len(ok) - len(shed)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entities", type=int, default=10_000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--factor", type=float, default=2.0)
    parser.add_argument("--clients", type=int, default=128)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--max-in-flight", type=int, default=8)
    parser.add_argument("--stores", default="sqlite,redis")
    args = parser.parse_args()
    for tool in ("wrk", "hey"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} not found: apt-get install -y {tool}")
    _results.start()
    root = Path(tempfile.mkdtemp(prefix="bench-overload-"))
    redis = None
    results: dict[str, Any] = {}
    try:
        wanted = args.stores.split(",")
        if "redis" in wanted:
            redis = RedisServer(root / "redis-server")
            redis.start()
        stores = build_stores(root, args.entities, redis)
        body_file = root / "body.json"
        body_file.write_text(__import__("json").dumps(body_of(["user-42"])))
        for name in wanted:
            server = ServeProcess({**env_of(stores[name]), "FP_SERVE__WORKERS": str(args.workers),
                                   "FP_SERVE__MAX_IN_FLIGHT": str(args.max_in_flight)}, log=root / f"{name}.log")
            server.start()
            try:
                check_equal_self(server.url)
                capacity_runs = [run_wrk(server.url, 1, args.entities, args.seconds, 16) for _ in range(args.repeat)]
                capacity = statistics.median(run["rps"] for run in capacity_runs)
                unloaded = run_hey(server.url, body_file, clients=4, rate_per_client=capacity / 4 / 4,
                                   seconds=args.seconds)
                overload = run_hey(server.url, body_file, clients=args.clients,
                                   rate_per_client=capacity * args.factor / args.clients, seconds=args.seconds)
                ratio = (overload["admitted_p99_ms"] / unloaded["admitted_p99_ms"]
                         if overload["admitted_p99_ms"] and unloaded["admitted_p99_ms"] else None)
                verdict = {"no_500": overload["status_counts"].get("500", 0) == 0 and overload["errors"] == 0,
                           "admitted_p99_within_3x_unloaded": ratio is not None and ratio <= 3.0,
                           "some_shed": overload["shed"] > 0}
                results[name] = {"capacity_rps": capacity, "capacity_runs": capacity_runs, "unloaded": unloaded,
                                 "overload": overload, "admitted_p99_over_unloaded_p99": None if ratio is None
                                 else round(ratio, 2), "pass": verdict, "load_average_1m": os.getloadavg()[0]}
                print(f"{name}: capacity {capacity:.0f} req/s; unloaded p99 {unloaded['admitted_p99_ms']:.2f} ms; "
                      f"at {overload['offered_rps']:.0f} req/s offered: admitted p99 "
                      f"{overload['admitted_p99_ms']} ms ({ratio and round(ratio, 2)}x), shed {overload['shed']} "
                      f"(p99 {overload['shed_p99_ms']} ms), statuses {overload['status_counts']}", flush=True)
            finally:
                server.stop()
    finally:
        if redis is not None:
            redis.stop()
        shutil.rmtree(root, ignore_errors=True)
    parameters = {"entities": args.entities, "seconds": args.seconds, "repeat": args.repeat, "factor": args.factor,
                  "clients": args.clients, "workers": args.workers, "max_in_flight_per_worker": args.max_in_flight,
                  "request": "1 entity x 5 features"}
    path = _results.write("serving_overload", parameters, results)
    print(f"results: {path}")


if __name__ == "__main__":
    main()
