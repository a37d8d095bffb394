"""Benchmark: online loading from a committed Delta table, ours vs ``feast materialize``, into SQLite and Redis.

Side by side in one run, medians of ``--repeat`` runs, on the same Delta table and the same store:

* rows/s (entities written per second) of :func:`pipelines.feast_sync.online.load_latest_online` and of Feast's
  ``FeatureStore.materialize`` over the table's whole time range, into SQLite and into a real redis-server started here
  (flushed before each run, since Feast's Redis store would otherwise skip values it already holds). The Feast
  baseline is ``feast materialize`` reading through OUR Delta offline store (the repository registered by
  ``apply_repo``), not Feast's stock file store: it measures Feast's materialisation and online write path on the same
  snapshot reader.
* What each loader wrote is counted in the store after the load (entities held: ``COUNT(DISTINCT entity_key)`` in
  SQLite, the keys in Redis; our loaders' Delta-version marker entry left out), not taken from the request; rows/s
  use that count. After the last repetition the whole content of both loads is read back with
  ``get_online_features`` and compared: the same entities, the same values, and both equal to the newest Delta row of
  every entity. Any difference fails the benchmark.
* the limiter at ``--rate`` writes/s (Redis): the achieved rate, and the p99 latency of online reads
  (``get_online_features`` for 10 entities, from a separate process, as a serving process would) while the load runs,
  against their p99 with no load running. The reader's measured window and the load's window are both recorded: the
  overlap (seconds and share of the read window) says how much of the "during load" figure really ran during the load,
  and the p99 of the reads that started inside the load window is reported beside it.

    .venv/bin/python benchmarks/online_load.py --entities 100000 --repeat 3

Raw results: benchmarks/results/online_load.json (every run, medians, machine).
"""

from __future__ import annotations

import argparse
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

import _results  # noqa: E402
import pyarrow as pa  # noqa: E402
from deltalake import write_deltalake  # noqa: E402

from pipelines.config import PROJECT_ROOT, Settings  # noqa: E402
from pipelines.contracts.load import load_contract  # noqa: E402
from pipelines.delta.schema import delta_schema  # noqa: E402

NOW = datetime.now(UTC).replace(second=0, microsecond=0)


def write_table(contract, path: Path, entities: int, windows: int) -> tuple[int, dict[str, tuple]]:
    """Write the table; return its row count and the newest row's feature values per entity (what a load must hold)."""
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
    names = [f.name for f in contract.features]
    newest = {row["user_id"]: tuple(row[name] for name in names) for row in rows}  # windows ascend: last wins
    return len(rows), newest


TABLE = "feature_platform_user_txn_stats_v1"


def entities_in_store(kind: str, settings: Settings, redis_port: int) -> int:
    """How many entities the online store holds (what a load really wrote, the store was emptied before).

    Our loaders also record the Delta version they loaded in the store (``MARKER_KEY``): that entry is not an entity.
    """
    from pipelines.feast_sync.online_writers import MARKER_KEY

    if kind == "redis":
        import redis

        client = redis.Redis(port=redis_port)
        try:
            return sum(1 for key in client.scan_iter(count=5000) if not key.startswith(MARKER_KEY))
        finally:
            client.close()
    import sqlite3

    from pipelines.feast_sync.store import online_store_path

    connection = sqlite3.connect(online_store_path(settings))
    try:
        return int(connection.execute(f"SELECT COUNT(DISTINCT entity_key) FROM {TABLE} WHERE entity_key != ?",
                                      (MARKER_KEY,)).fetchone()[0])
    finally:
        connection.close()


def store_contents(store, contract, entities: int) -> dict[str, tuple]:
    """Every entity's online values, read back through Feast (entities without any value are left out)."""
    from pipelines.feast_sync.online import read_online

    names = [f.name for f in contract.features]
    contents = {}
    ids = [f"user-{n:07d}" for n in range(entities)]
    for first in range(0, len(ids), 2000):
        columns = read_online(store, contract, [{"user_id": key} for key in ids[first:first + 2000]])
        for position, key in enumerate(columns["user_id"]):
            values = tuple(columns[name][position] for name in names)
            if any(value is not None for value in values):
                contents[key] = values
    return contents


def compare_contents(label: str, got: dict[str, tuple], expected: dict[str, tuple]) -> None:
    if got.keys() != expected.keys():
        raise SystemExit(f"{label}: {len(expected.keys() - got.keys())} entities missing, "
                         f"{len(got.keys() - expected.keys())} unexpected")
    differing = [key for key in expected if not all(
        a == b or (isinstance(a, float) and isinstance(b, float) and abs(a - b) <= 1e-9 * max(abs(a), abs(b)))
        for a, b in zip(got[key], expected[key], strict=True))]
    if differing:
        key = differing[0]
        raise SystemExit(f"{label}: {len(differing)} entities hold other values, e.g. {key}: {got[key]} vs "
                         f"{expected[key]}")


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
            connection.execute(f"DELETE FROM {TABLE}")
        connection.close()


def time_ours(store, contract, path) -> tuple[float, int]:
    """Seconds of our load and the rows it says the store took (checked against the store's count by the caller)."""
    from pipelines.feast_sync.online import load_latest_online

    started = time.perf_counter()
    result = load_latest_online(store, contract, path)
    return time.perf_counter() - started, result.rows_written


def time_feast(store, contract) -> float:
    """Seconds of ``feast materialize`` (through our Delta offline store); what it wrote is counted in the store."""
    started = time.perf_counter()
    store.materialize(start_date=NOW - timedelta(days=2), end_date=NOW + timedelta(minutes=1),
                      feature_views=[contract.table_name])
    return time.perf_counter() - started


def reader(settings_dir: str, redis_url: str, entities: int, seconds: float, out) -> None:
    """Read 10 random entities at a time for ``seconds``, as a serving process would.

    Puts ``"ready"`` on ``out`` once warmed up, then (start wall time, latency) of every read."""
    from pipelines.feast_sync.online import read_online
    from pipelines.testing.redis_server import redis_feature_store

    settings = Settings(data_dir=Path(settings_dir))
    store = redis_feature_store(settings, redis_url)
    contract = load_contract(PROJECT_ROOT / "contracts" / "user_txn_stats.yaml").contract
    rng = random.Random(1)
    read_online(store, contract, [{"user_id": "user-0000000"}])  # warm up (registry, connection)
    out.put("ready")
    reads = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        rows = [{"user_id": f"user-{rng.randrange(entities):07d}"} for _ in range(10)]
        wall, started = time.time(), time.perf_counter()
        read_online(store, contract, rows)
        reads.append((wall, time.perf_counter() - started))
        time.sleep(0.002)
    out.put(reads)


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98]


def read_window(settings: Settings, redis_url: str, entities: int, seconds: float, during=None) -> dict:
    """Reads from another process for ``seconds`` after its warm-up; ``during`` (the load) starts when it is ready.

    Returns the reads' p99, their window and, with ``during``, its result, its window and the overlap of both."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=reader, args=(str(settings.data_dir), redis_url, entities, seconds, queue))
    process.start()
    if queue.get(timeout=300) != "ready":
        raise SystemExit("the reader did not warm up")
    load_start = time.time()
    result = during() if during else None
    load_end = time.time()
    reads = queue.get(timeout=seconds + 300)
    process.join(timeout=30)
    latencies = [latency for _, latency in reads]
    read_start, read_end = reads[0][0], reads[-1][0] + reads[-1][1]
    window = {"p99_s": p99(latencies), "reads": len(reads), "read_window_s": round(read_end - read_start, 3)}
    if during is not None:
        overlap = max(0.0, min(read_end, load_end) - max(read_start, load_start))
        inside = [latency for wall, latency in reads if load_start <= wall <= load_end]
        window |= {"result": result, "load_window_s": round(load_end - load_start, 3),
                   "overlap_s": round(overlap, 3),
                   "overlap_share_of_reads": round(overlap / (read_end - read_start), 3),
                   "reads_inside_load": len(inside), "p99_s_inside_load": p99(inside) if len(inside) >= 2 else None}
    return window


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=100_000)
    parser.add_argument("--windows", type=int, default=2, help="Delta rows per entity")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rate", type=float, default=10_000.0)
    args = parser.parse_args()
    _results.start()

    from pipelines.feast_sync.store import apply_repo
    from pipelines.runtime import StageConfig

    contract = load_contract(PROJECT_ROOT / "contracts" / "user_txn_stats.yaml").contract
    work = Path(tempfile.mkdtemp(prefix="online-load-bench-"))
    redis_server = start_redis(work / "redis")
    try:
        settings = Settings(data_dir=work / "data")
        path = settings.delta_table_path(contract.table_name)
        rows, newest = write_table(contract, path, args.entities, args.windows)
        baseline = ("feast materialize reads through our Delta offline store (pipelines.feast_sync.offline_store, "
                    "registered by apply_repo), not Feast's file store")
        print(f"baseline: {baseline}")
        results: dict = {"delta_rows": rows, "feast_baseline": baseline, "stores": {}}
        for kind, store in stores(settings, redis_server.url).items():
            apply_repo(store, [(contract, path)])
            runs = {"ours": [], "feast_materialize": []}
            raw: dict[str, list[dict]] = {"ours": [], "feast_materialize": []}
            contents = {}
            for attempt in range(args.repeat):
                last = attempt == args.repeat - 1
                reset(kind, store, settings, redis_server.port)
                seconds, reported = time_ours(store, contract, path)
                held = entities_in_store(kind, settings, redis_server.port)
                if held != reported or held != args.entities:
                    raise SystemExit(f"{kind}: our load reported {reported} rows, the store holds {held} entities, "
                                     f"expected {args.entities}")
                runs["ours"].append(held / seconds)
                raw["ours"].append({"seconds": seconds, "entities_in_store": held, "reported_written": reported})
                if last:
                    contents["ours"] = store_contents(store, contract, args.entities)
                reset(kind, store, settings, redis_server.port)
                seconds = time_feast(store, contract)
                held = entities_in_store(kind, settings, redis_server.port)
                runs["feast_materialize"].append(held / seconds)
                raw["feast_materialize"].append({"seconds": seconds, "entities_in_store": held})
                if last:
                    contents["feast_materialize"] = store_contents(store, contract, args.entities)
            for name, got in contents.items():
                compare_contents(f"{kind} {name} vs the newest Delta rows", got, newest)
            compare_contents(f"{kind} ours vs feast materialize", contents["ours"], contents["feast_materialize"])
            medians = {name: statistics.median(values) for name, values in runs.items()}
            results["stores"][kind] = {"rows_per_s_median": {k: round(v) for k, v in medians.items()},
                                       "speedup": round(medians["ours"] / medians["feast_materialize"], 2),
                                       "runs": {k: [round(v) for v in vs] for k, vs in runs.items()},
                                       "raw_runs": raw,
                                       "contents_compared": {"entities": len(contents["ours"]),
                                                             "ours_equals_feast": True,
                                                             "both_equal_newest_delta_rows": True}}
            print(f"{kind:6s} ours {medians['ours']:>9,.0f} rows/s   feast materialize "
                  f"{medians['feast_materialize']:>9,.0f} rows/s   ×{results['stores'][kind]['speedup']}   "
                  f"(rows = entities counted in the store; contents of both loads identical, "
                  f"{len(contents['ours']):,} entities)", flush=True)

        # The limiter: the same load into Redis at --rate writes/s, with online reads running in another process.
        from pipelines.feast_sync.online import load_latest_online

        store = stores(settings, redis_server.url)["redis"]
        load_latest_online(store, contract, path)
        seconds = args.entities / args.rate
        idle = read_window(settings, redis_server.url, args.entities, seconds)
        limited = StageConfig(rate=args.rate, burst=max(1, int(args.rate / 20)), workers=2)

        def limited_load() -> float:
            reset("redis", store, settings, redis_server.port)
            started = time.perf_counter()
            result = load_latest_online(store, contract, path, stage_config=limited)
            return result.rows_loaded / (time.perf_counter() - started)

        busy = read_window(settings, redis_server.url, args.entities, seconds, limited_load)
        achieved, idle_p99, busy_p99 = busy.pop("result"), idle["p99_s"], busy["p99_s"]
        inside = busy["p99_s_inside_load"]
        results["limiter"] = {"rate": args.rate, "achieved_rows_per_s": round(achieved),
                              "deviation_pct": round(100 * (achieved / args.rate - 1), 2),
                              "read_p99_ms_idle": round(idle_p99 * 1000, 2), "reads_idle": idle["reads"],
                              "read_p99_ms_during_load": round(busy_p99 * 1000, 2), "reads_during_load": busy["reads"],
                              "p99_ratio": round(busy_p99 / idle_p99, 2),
                              "read_p99_ms_inside_load_window": None if inside is None else round(inside * 1000, 2),
                              "idle_window": idle, "load_window": busy}
        print(f"limiter {args.rate:,.0f}/s: achieved {achieved:,.0f}/s "
              f"({results['limiter']['deviation_pct']:+.1f} %); read p99 idle {idle_p99 * 1000:.1f} ms, "
              f"during load {busy_p99 * 1000:.1f} ms (×{results['limiter']['p99_ratio']}); the read window "
              f"({busy['read_window_s']:.1f} s) overlapped the load ({busy['load_window_s']:.1f} s) for "
              f"{busy['overlap_s']:.1f} s = {100 * busy['overlap_share_of_reads']:.0f} % of the reads' window; "
              f"p99 of the {busy['reads_inside_load']} reads inside the load: "
              + ("n/a" if inside is None else f"{inside * 1000:.1f} ms"))
        _results.write("online_load", {"entities": args.entities, "windows": args.windows, "repeat": args.repeat,
                                       "rate": args.rate}, results)
    finally:
        redis_server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
