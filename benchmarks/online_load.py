"""Benchmark: online loading from a committed Delta table, ours vs ``feast materialize``, into SQLite and Redis.

Side by side in one run, medians of ``--repeat`` runs, on the same Delta table and the same store:

* rows/s (entities written per second) of :func:`pipelines.feast_sync.online.load_latest_online` and of Feast's
  ``FeatureStore.materialize`` over the table's whole time range, into SQLite and into a real redis-server started here
  (flushed before each run, since Feast's Redis store would otherwise skip values it already holds);
* the limiter at ``--rate`` writes/s (Redis): the achieved rate, and the p99 latency of online reads
  (``get_online_features`` for 10 entities, from a separate process, as a serving process would) while the load runs,
  against their p99 with no load running.

    .venv/bin/python benchmarks/online_load.py --entities 100000 --repeat 3

Results are printed and written to benchmarks/results/online_load.json.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "feast_sync"))

import pyarrow as pa  # noqa: E402
from deltalake import write_deltalake  # noqa: E402

from pipelines.config import PROJECT_ROOT, Settings  # noqa: E402
from pipelines.contracts.load import load_contract  # noqa: E402
from pipelines.delta.schema import delta_schema  # noqa: E402

NOW = datetime.now(UTC).replace(second=0, microsecond=0)


def write_table(contract, path: Path, entities: int, windows: int) -> int:
    rng = random.Random(7)
    rows = []
    for w in range(windows):
        end = NOW - timedelta(minutes=5 * (windows - w))
        for n in range(entities):
            amount = rng.uniform(0, 500)
            rows.append({"user_id": f"user-{n:07d}", "window_start": end - timedelta(minutes=5), "window_end": end,
                         "txn_count_5m": rng.randint(0, 40), "amount_sum_5m": amount, "amount_sum_1h": amount * 12,
                         "amount_avg_1h": amount / 3, "amount_max_1h": amount + 1,
                         "distinct_merchants_1h": rng.randint(0, 9), "last_country_1h": rng.choice("ABCDEFGH") * 2,
                         "ingested_at": NOW})
    write_deltalake(str(path), pa.Table.from_pylist(rows, schema=delta_schema(contract)), mode="append")
    return len(rows)


def start_redis(workdir: Path):
    from pipelines.testing.redis_server import RedisServer

    server = RedisServer(workdir)
    server.start()
    return server


def stores(settings: Settings, redis_url: str):
    from pipelines.feast_sync.store import open_store
    from pipelines.testing.redis_server import redis_feature_store

    return {"sqlite": open_store(settings), "redis": redis_feature_store(settings, redis_url)}


def reset(kind: str, store, settings: Settings, redis_port: int) -> None:
    if kind == "redis":
        import redis

        redis.Redis(port=redis_port).flushall()
    else:
        import sqlite3

        from pipelines.feast_sync.store import online_store_path

        with sqlite3.connect(online_store_path(settings)) as connection:
            connection.execute("DELETE FROM feature_platform_user_txn_stats_v1")
        connection.close()


def time_ours(store, contract, path) -> tuple[float, int]:
    from pipelines.feast_sync.online import load_latest_online

    started = time.perf_counter()
    result = load_latest_online(store, contract, path)
    return time.perf_counter() - started, result.rows_loaded


def time_feast(store, contract, entities: int) -> tuple[float, int]:
    started = time.perf_counter()
    store.materialize(start_date=NOW - timedelta(days=2), end_date=NOW + timedelta(minutes=1),
                      feature_views=[contract.table_name])
    return time.perf_counter() - started, entities


def reader(settings_dir: str, redis_url: str, entities: int, seconds: float, out) -> None:
    """Read 10 random entities at a time for ``seconds``, as a serving process would; send back the latencies."""
    from pipelines.feast_sync.online import read_online
    from pipelines.testing.redis_server import redis_feature_store

    settings = Settings(data_dir=Path(settings_dir))
    store = redis_feature_store(settings, redis_url)
    contract = load_contract(PROJECT_ROOT / "contracts" / "user_txn_stats.yaml").contract
    rng = random.Random(1)
    read_online(store, contract, [{"user_id": "user-0000000"}])  # warm up (registry, connection)
    latencies = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        rows = [{"user_id": f"user-{rng.randrange(entities):07d}"} for _ in range(10)]
        started = time.perf_counter()
        read_online(store, contract, rows)
        latencies.append(time.perf_counter() - started)
        time.sleep(0.002)
    out.put(latencies)


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98]


def read_p99(settings: Settings, redis_url: str, entities: int, seconds: float, during=None) -> tuple[float, int]:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=reader, args=(str(settings.data_dir), redis_url, entities, seconds, queue))
    process.start()
    time.sleep(8)  # the reader imports Feast and warms up before the measured window starts
    result = during() if during else None
    latencies = queue.get(timeout=seconds + 120)
    process.join(timeout=30)
    return p99(latencies), len(latencies), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=100_000)
    parser.add_argument("--windows", type=int, default=2, help="Delta rows per entity")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rate", type=float, default=10_000.0)
    args = parser.parse_args()

    from pipelines.feast_sync.store import apply_repo
    from pipelines.runtime import StageConfig

    contract = load_contract(PROJECT_ROOT / "contracts" / "user_txn_stats.yaml").contract
    work = Path(tempfile.mkdtemp(prefix="online-load-bench-"))
    redis_server = start_redis(work / "redis")
    try:
        settings = Settings(data_dir=work / "data")
        path = settings.delta_table_path(contract.table_name)
        rows = write_table(contract, path, args.entities, args.windows)
        results: dict = {"entities": args.entities, "delta_rows": rows, "repeat": args.repeat, "stores": {}}
        for kind, store in stores(settings, redis_server.url).items():
            apply_repo(store, [(contract, path)])
            runs = {"ours": [], "feast_materialize": []}
            for _ in range(args.repeat):
                reset(kind, store, settings, redis_server.port)
                seconds, written = time_ours(store, contract, path)
                runs["ours"].append(written / seconds)
                reset(kind, store, settings, redis_server.port)
                seconds, written = time_feast(store, contract, args.entities)
                runs["feast_materialize"].append(written / seconds)
            medians = {name: statistics.median(values) for name, values in runs.items()}
            results["stores"][kind] = {"rows_per_s_median": {k: round(v) for k, v in medians.items()},
                                       "speedup": round(medians["ours"] / medians["feast_materialize"], 2),
                                       "runs": {k: [round(v) for v in vs] for k, vs in runs.items()}}
            print(f"{kind:6s} ours {medians['ours']:>9,.0f} rows/s   feast materialize "
                  f"{medians['feast_materialize']:>9,.0f} rows/s   ×{results['stores'][kind]['speedup']}")

        # The limiter: the same load into Redis at --rate writes/s, with online reads running in another process.
        from pipelines.feast_sync.online import load_latest_online

        store = stores(settings, redis_server.url)["redis"]
        load_latest_online(store, contract, path)
        seconds = args.entities / args.rate
        idle_p99, idle_reads, _ = read_p99(settings, redis_server.url, args.entities, seconds)
        limited = StageConfig(rate=args.rate, burst=max(1, int(args.rate / 20)), workers=2)

        def limited_load() -> float:
            reset("redis", store, settings, redis_server.port)
            started = time.perf_counter()
            result = load_latest_online(store, contract, path, stage_config=limited)
            return result.rows_loaded / (time.perf_counter() - started)

        busy_p99, busy_reads, achieved = read_p99(settings, redis_server.url, args.entities, seconds, limited_load)
        results["limiter"] = {"rate": args.rate, "achieved_rows_per_s": round(achieved),
                              "deviation_pct": round(100 * (achieved / args.rate - 1), 2),
                              "read_p99_ms_idle": round(idle_p99 * 1000, 2), "reads_idle": idle_reads,
                              "read_p99_ms_during_load": round(busy_p99 * 1000, 2), "reads_during_load": busy_reads,
                              "p99_ratio": round(busy_p99 / idle_p99, 2)}
        print(f"limiter {args.rate:,.0f}/s: achieved {achieved:,.0f}/s "
              f"({results['limiter']['deviation_pct']:+.1f} %); read p99 idle {idle_p99 * 1000:.1f} ms, "
              f"during load {busy_p99 * 1000:.1f} ms (×{results['limiter']['p99_ratio']})")
        out = ROOT / "benchmarks" / "results" / "online_load.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    finally:
        redis_server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
