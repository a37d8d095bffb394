"""Benchmark: ``feature-platform serve`` against ``feast serve -w 2 --max-requests 0`` on the same online store,
SQLite and Redis, side by side in one run.

For each store, both servers read the same data (``--entities`` users of ``user_txn_stats_v1``, loaded by the
platform's loader; Feast's server reads it through its own registry and online store classes). Before any timing,
the same requests (one entity and a batch of 100, 5 features) go to both servers and the answers must be equal
(values, statuses, event timestamps, by feature name); any difference fails the benchmark. Then ``wrk`` (2 threads,
``--connections`` connections, each request a random entity batch) runs ``--seconds`` per server and scenario,
alternating ours and Feast's, ``--repeat`` times:

* ``single``: 1 entity x 5 features; ``batch100``: 100 entities x 5 features;
* requests/s, p50 / p99 / p99.9 latency (wrk's own histogram), non-200 answers (must be 0);
* answers of ours that carried a fallback (``X-Fallbacks`` > 0; must be 0: ours runs with ``--deadline-ms`` 1000 so
  that every timed answer is a real store read even on a loaded machine; what the deadline does is measured by
  ``benchmarks/serving_overload.py``);
* memory of every worker process (RSS and USS, MiB) after the runs.

wrk, the servers and the store share this 2-core machine (and other engineers' jobs: the load average is recorded).
Ratios of medians, side by side, are what count.

    .venv/bin/python benchmarks/serving.py --seconds 10 --repeat 3

Raw results: benchmarks/results/serving.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import _results  # noqa: E402
import psutil  # noqa: E402
import pyarrow as pa  # noqa: E402
import yaml  # noqa: E402
from deltalake import write_deltalake  # noqa: E402

from pipelines.config import PROJECT_ROOT, Settings  # noqa: E402
from pipelines.contracts.load import load_contract  # noqa: E402
from pipelines.delta.schema import delta_schema  # noqa: E402
from pipelines.testing.lifetime import parent_death_hook  # noqa: E402
from pipelines.testing.redis_server import RedisServer, free_port  # noqa: E402
from pipelines.testing.serve_process import ServeProcess  # noqa: E402

VIEW = "user_txn_stats_v1"
FEATURES = ["txn_count_5m", "amount_sum_5m", "amount_sum_1h", "amount_max_1h", "last_country_1h"]
SCENARIOS = {"single": 1, "batch100": 100}
WRK_SCRIPT = Path(__file__).resolve().parent / "wrk" / "online_features.lua"
NOW = datetime.now(UTC).replace(second=0, microsecond=0)


# ------------------------------------------------------------------------------------------------------ the store
def build_stores(root: Path, entities: int, redis: RedisServer | None) -> dict[str, Settings]:
    """One Delta table of ``entities`` users, loaded into a SQLite store and (when given) Redis; settings of each."""
    from pipelines.feast_sync.online import load_latest_online
    from pipelines.feast_sync.store import apply_repo, open_store
    from pipelines.testing.redis_server import redis_feature_store

    contracts = root / "contracts"
    contracts.mkdir(parents=True)
    shutil.copy(PROJECT_ROOT / "contracts" / "user_txn_stats.yaml", contracts)
    contract = load_contract(contracts / "user_txn_stats.yaml").contract
    delta = root / "delta" / VIEW
    rows = [{"user_id": f"user-{n}", "window_start": NOW - timedelta(minutes=10), "window_end": NOW - timedelta(
        minutes=5), "txn_count_5m": n % 50, "amount_sum_5m": n * 1.25, "amount_sum_1h": n * 15.0,
        "amount_avg_1h": n / 3, "amount_max_1h": n + 0.5, "distinct_merchants_1h": n % 7,
        "last_country_1h": ("DE", "FR", "NL", None)[n % 4], "ingested_at": NOW} for n in range(entities)]
    write_deltalake(str(delta), pa.Table.from_pylist(rows, schema=delta_schema(contract)), mode="append")
    stores = {}
    sqlite = Settings(data_dir=root / "sqlite", contracts_dir=contracts)
    store = open_store(sqlite)
    apply_repo(store, [(contract, delta)])
    load_latest_online(store, contract, delta)
    stores["sqlite"] = sqlite
    if redis is not None:
        settings = Settings(data_dir=root / "redis", contracts_dir=contracts, online_store="redis",
                            redis_url=redis.url)
        apply_repo(open_store(settings), [(contract, delta)])
        load_latest_online(redis_feature_store(settings, redis.url), contract, delta)
        stores["redis"] = settings
    return stores


def env_of(settings: Settings) -> dict[str, str]:
    return {"FP_DATA_DIR": str(settings.data_dir), "FP_CONTRACTS_DIR": str(settings.contracts_dir),
            "FP_ONLINE_STORE": settings.online_store, "FP_REDIS_URL": settings.redis_url}


# ------------------------------------------------------------------------------------------------------ servers
class FeastServe:
    """``feast serve -w 2 --max-requests 0`` over a repository whose feature_store.yaml points at the same registry
    and online store as ``settings`` (absolute paths)."""

    def __init__(self, settings: Settings, root: Path, workers: int = 2) -> None:
        from pipelines.feast_sync.store import repo_config_dict

        self.port = free_port()
        self.repo = root / f"feast-repo-{settings.online_store}"
        self.repo.mkdir()
        config = repo_config_dict(settings)
        if settings.online_store == "redis":
            config["online_store"] = {"type": "redis", "connection_string": settings.redis_url}
        (self.repo / "feature_store.yaml").write_text(yaml.safe_dump(config))
        self.workers = workers
        self.log = root / f"feast-serve-{settings.online_store}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 900.0) -> None:
        feast = Path(sys.executable).parent / "feast"
        self.process = subprocess.Popen(
            [str(feast), "-c", str(self.repo), "serve", "-h", "127.0.0.1", "-p", str(self.port), "-w",
             str(self.workers), "--max-requests", "0", "--no-access-log"],
            stdout=self.log.open("wb"), stderr=subprocess.STDOUT, preexec_fn=parent_death_hook(),
            env={**os.environ, "PYTHONPATH": str(ROOT)})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"feast serve exited: {self.log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=2) as response:
                    if response.status == 200 and len(psutil.Process(self.process.pid).children()) >= self.workers:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"feast serve not up after {timeout}s: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                for child in psutil.Process(self.process.pid).children(recursive=True):
                    child.kill()
                self.process.kill()
                self.process.wait(timeout=10)


def worker_memory(pid: int) -> list[dict[str, float]]:
    """RSS and USS (MiB) of every worker process under ``pid`` (the supervisor itself left out)."""
    out = []
    for child in psutil.Process(pid).children(recursive=True):
        info = child.memory_full_info()
        out.append({"pid": child.pid, "rss_mib": round(info.rss / 2**20, 1), "uss_mib": round(info.uss / 2**20, 1)})
    return out


# ------------------------------------------------------------------------------------------------------ requests
def post(url: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(url + "/get-online-features", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def by_name(response: dict[str, Any]) -> dict[str, Any]:
    names = response["metadata"]["feature_names"]
    return {name: (r["values"], r["statuses"], r.get("event_timestamps")) for name, r in
            zip(names, response["results"], strict=True)}


def body_of(users: list[str]) -> dict[str, Any]:
    return {"features": [f"{VIEW}:{name}" for name in FEATURES], "entities": {"user_id": users}}


def check_equal(ours: str, feast: str, entities: int) -> int:
    """Ask both servers the same requests; fail on any difference. Returns how many values were compared."""
    for n in range(5):  # warm up: the first requests open store connections
        post(ours, body_of([f"user-{n}"]))
        post(feast, body_of([f"user-{n}"]))
    compared = 0
    for users in ([f"user-{n}"] for n in (0, 1, 2, entities - 1)):
        a, b = by_name(post(ours, body_of(users))), by_name(post(feast, body_of(users)))
        if a != b:
            raise AssertionError(f"answers differ for {users}: ours {a} feast {b}")
        compared += len(a) * len(users)
    batch = [f"user-{n}" for n in range(0, entities, max(1, entities // 100))][:100]
    a, b = by_name(post(ours, body_of(batch))), by_name(post(feast, body_of(batch)))
    if a != b:
        raise AssertionError("answers differ for the batch of 100")
    if any(status != "PRESENT" for name in FEATURES for status in a[name][1]):
        raise AssertionError("a benchmark entity is not PRESENT: the store was not loaded as expected")
    return compared + len(a) * len(batch)


def check_equal_self(ours: str) -> None:
    """The benchmark entities are served PRESENT with their loaded values (a server that answers fast but wrong would
    otherwise pass unnoticed)."""
    got = by_name(post(ours, body_of(["user-42"])))
    if got["txn_count_5m"][:2] != ([42 % 50], ["PRESENT"]) or got["amount_sum_5m"][0] != [42 * 1.25]:
        raise AssertionError(f"unexpected answer for user-42: {got}")


def run_wrk(url: str, batch: int, entities: int, seconds: float, connections: int) -> dict[str, Any]:
    env = {**os.environ, "WRK_VIEW": VIEW, "WRK_FEATURES": ",".join(FEATURES), "WRK_USERS": str(entities),
           "WRK_BATCH": str(batch)}
    done = subprocess.run(["wrk", "-t", "2", "-c", str(connections), "-d", f"{int(seconds)}s", "--timeout", "5s",
                           "-s", str(WRK_SCRIPT), url], capture_output=True, text=True, env=env,
                          timeout=seconds + 60, check=True)
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    summary["rps"] = round(summary["requests"] / (summary["duration_us"] / 1e6), 1)
    return summary


def median_of(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(run[key] for run in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entities", type=int, default=10_000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2, help="workers of ours (Feast's: -w 2 as the issue says)")
    parser.add_argument("--stores", default="sqlite,redis")
    parser.add_argument("--deadline-ms", type=float, default=1000.0)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk not found: apt-get install -y wrk")
    _results.start()
    root = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    redis = None
    results: dict[str, Any] = {}
    try:
        stores_wanted = args.stores.split(",")
        if "redis" in stores_wanted:
            redis = RedisServer(root / "redis-server")
            redis.start()
        stores = build_stores(root, args.entities, redis)
        for store_name in stores_wanted:
            settings = stores[store_name]
            ours = ServeProcess({**env_of(settings), "FP_SERVE__WORKERS": str(args.workers),
                                 "FP_SERVE__DEADLINE_MS": str(args.deadline_ms)},
                                log=root / f"ours-{store_name}.log")
            feast = FeastServe(settings, root)
            ours.start()
            feast.start()
            try:
                compared = check_equal(ours.url, feast.url, args.entities)
                print(f"{store_name}: answers equal ({compared} values compared)", flush=True)
                store_results: dict[str, Any] = {"values_compared_equal": compared}
                for scenario, batch in SCENARIOS.items():
                    runs: dict[str, list[dict[str, Any]]] = {"ours": [], "feast": []}
                    for _ in range(args.repeat):
                        for name, server in (("ours", ours), ("feast", feast)):
                            run = run_wrk(server.url, batch, args.entities, args.seconds, args.connections)
                            run["load_average_1m"] = os.getloadavg()[0]
                            runs[name].append(run)
                            print(f"  {store_name} {scenario} {name}: {run['rps']:.0f} req/s p50 "
                                  f"{run['p50_us'] / 1000:.2f} ms p99 {run['p99_us'] / 1000:.2f} ms p99.9 "
                                  f"{run['p999_us'] / 1000:.2f} ms non-200 {run['non_200']}", flush=True)
                    summary = {name: {key: median_of(r, key) for key in ("rps", "p50_us", "p99_us", "p999_us")}
                               | {"non_200": sum(x["non_200"] + x["socket_errors"] for x in r),
                                  "with_fallbacks": sum(x["with_fallbacks"] for x in r)}
                               for name, r in runs.items()}
                    summary["rps_ratio_ours_over_feast"] = round(summary["ours"]["rps"] / summary["feast"]["rps"], 2)
                    summary["p99_ratio_feast_over_ours"] = round(summary["feast"]["p99_us"] /
                                                                 summary["ours"]["p99_us"], 2)
                    store_results[scenario] = {"medians": summary, "runs": runs}
                    print(f"  {store_name} {scenario}: ours/feast requests/s = "
                          f"{summary['rps_ratio_ours_over_feast']}x", flush=True)
                store_results["memory"] = {"ours": worker_memory(ours.process.pid),
                                           "feast": worker_memory(feast.process.pid)}
                results[store_name] = store_results
            finally:
                ours.stop()
                feast.stop()
    finally:
        if redis is not None:
            redis.stop()
        shutil.rmtree(root, ignore_errors=True)
    parameters = {"entities": args.entities, "seconds": args.seconds, "repeat": args.repeat,
                  "connections": args.connections, "wrk_threads": 2, "ours_workers": args.workers,
                  "ours_deadline_ms": args.deadline_ms,
                  "feast": "feast serve -w 2 --max-requests 0 --no-access-log", "features": FEATURES,
                  "scenarios": SCENARIOS}
    path = _results.write("serving", parameters, results)
    print(f"results: {path}")
    bad = [f"{s}/{sc}" for s, r in results.items() for sc in SCENARIOS
           if r[sc]["medians"]["ours"]["non_200"] or r[sc]["medians"]["ours"]["with_fallbacks"]]
    if bad:
        sys.exit(f"non-200 or fallback answers from ours in {bad}")


if __name__ == "__main__":
    main()
