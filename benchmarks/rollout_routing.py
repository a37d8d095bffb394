"""Routing cost: serving throughput and p99 with a rollout at 50 % against no rollout, interleaved in one run.

One ``feature-platform serve`` process (``--workers``) over the real rollout stack (pipelines/testing/rollout_stack.py:
both majors of user_txn_stats in Delta and the Feast SQLite online store, 2,000 users). Rounds alternate between no
rollout (no row in the rollout store: every entity goes to the newest major) and a rollout at 50 % (every entity
hashed, half served by major 1, the other half by major 2: two views read per request instead of one). Each round:
``wrk`` (2 threads, ``--connections`` connections, ``--seconds``) posting 2 features of ``--entities`` random users
by contract name (benchmarks/wrk/rollout_routing.lua, which also counts the entities each major served from
``x-served-versions``). Medians over ``--rounds`` rounds per mode; the ratio of the medians is the routing cost.

First, in-process (no HTTP), per request of ``--entities`` users: the routing decision with no rollout and at 50 %
(the store's change check, a murmur3 bucket per entity) and serving's SQLite read of one view against two views of
half the keys each: which part of the difference is routing and which is reading two majors.

Checks (fails otherwise): every response is a 200; with no rollout every entity is served by major 2; at 50 % the
share of entities served by major 2 is within 2 points of the share of the 2,000 users whose bucket is below 5,000
(itself within 5 points of 50 %).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from _results import start, write

from pipelines.feast_sync.store import open_store
from pipelines.rollout import controller as ctl
from pipelines.rollout.buckets import in_candidate
from pipelines.rollout.router import RolloutRouter
from pipelines.rollout.store import SqliteRolloutStore
from pipelines.testing.rollout_stack import USERS, RolloutStack, build_stack

WRK_SCRIPT = Path(__file__).resolve().parent / "wrk" / "rollout_routing.lua"


def run_wrk(url: str, seconds: float, connections: int, entities: int) -> dict:
    env = {**os.environ, "WRK_CONTRACT": "user_txn_stats", "WRK_FEATURES": "txn_count_5m,amount_sum_5m",
           "WRK_USERS": str(len(USERS)), "WRK_BATCH": str(entities)}
    done = subprocess.run(["wrk", "-t", "2", "-c", str(connections), "-d", f"{int(seconds)}s", "--timeout", "5s",
                           "-s", str(WRK_SCRIPT), url], capture_output=True, text=True, env=env,
                          timeout=seconds + 60, check=True)
    out = json.loads(done.stdout.strip().splitlines()[-1])
    out["requests_per_s"] = out["requests"] / (out["duration_us"] / 1e6)
    out["p50_ms"], out["p99_ms"] = out["p50_us"] / 1000, out["p99_us"] / 1000
    return out


def breakdown(stack: RolloutStack, entities: int, repeat: int = 3000) -> dict:
    """In-process, per request of ``entities`` users, what a rollout at 50 % adds: the routing decision (the store's
    change check and a bucket per entity, :class:`RolloutRouter`) and the second view read (serving's SQLite reader,
    one lookup of every key against one per major of half the keys). Microseconds, median of 5 passes."""
    from pipelines.feast_sync.store import online_store_path
    from pipelines.serving.catalog import view_spec
    from pipelines.serving.stores import Lookup, SqliteReader
    from pipelines.serving.values import KeyEncoder

    router = RolloutRouter(SqliteRolloutStore(stack.settings.data_dir / "rollout" / "rollouts.sqlite"))
    project = open_store(stack.settings).project
    views = [view_spec(c, project) for c in (stack.v1, stack.v2)]
    encoder = KeyEncoder(views[0].join_keys, views[0].key_types)
    reader = SqliteReader(online_store_path(stack.settings), busy_timeout_s=5.0)
    batches = [[(user,) for user in USERS[i % 1900:][:entities]] for i in range(0, 200 * 7, 7)]
    features = ["txn_count_5m", "amount_sum_5m"]

    def timed(work: Callable[[list[tuple[str]]], object]) -> float:
        passes = []
        for _ in range(5):
            began = time.perf_counter()
            for n in range(repeat):
                work(batches[n % len(batches)])
            passes.append((time.perf_counter() - began) / repeat * 1e6)
        return statistics.median(passes)

    def keys(batch: list[tuple[str]]) -> list[bytes]:
        return encoder.keys({"user_id": [user for (user,) in batch]}, list(range(len(batch))))

    def one_view(batch: list[tuple[str]]) -> object:
        return asyncio.run_coroutine_threadsafe(reader.read([Lookup(views[1], keys(batch), features)]), loop).result()

    def two_views(batch: list[tuple[str]]) -> object:
        encoded, half = keys(batch), len(batch) // 2
        return asyncio.run_coroutine_threadsafe(reader.read([Lookup(views[0], encoded[:half], features),
                                                             Lookup(views[1], encoded[half:], features)]),
                                                loop).result()

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        out = {"route_none_us": timed(lambda batch: router.majors("user_txn_stats", batch))}
        state = ctl.start(stack.rollouts, stack.v2, stable_major=1, now=time.time(), stable=stack.v1)
        stack.rollouts.update(state.at_step(2, time.time()), None)
        out["route_50_us"] = timed(lambda batch: router.majors("user_txn_stats", batch))
        out["read_one_view_us"] = timed(one_view)
        out["read_two_views_us"] = timed(two_views)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
    with sqlite3.connect(stack.settings.data_dir / "rollout" / "rollouts.sqlite") as raw:
        raw.execute("DELETE FROM rollouts")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--entities", type=int, default=10)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk not found: apt-get install -y wrk")
    start()
    with tempfile.TemporaryDirectory() as folder:
        stack = build_stack(Path(folder), workers=args.workers)
        db = stack.settings.data_dir / "rollout" / "rollouts.sqlite"
        runs: dict[str, list[dict]] = {"none": [], "rollout_50": []}
        try:
            parts = breakdown(stack, args.entities)
            print("in-process, per request: " + ", ".join(f"{k} {v:.1f}" for k, v in parts.items()), flush=True)
            run_wrk(stack.server.url, 3, args.connections, args.entities)  # warm-up, not counted
            for round_ in range(args.rounds):
                modes = ("none", "rollout_50") if round_ % 2 == 0 else ("rollout_50", "none")
                for mode in modes:
                    with sqlite3.connect(db) as raw:
                        raw.execute("DELETE FROM rollouts")
                    expected = 1.0
                    if mode == "rollout_50":
                        state = ctl.start(stack.rollouts, stack.v2, stable_major=1, now=time.time(), stable=stack.v1)
                        stack.rollouts.update(state.at_step(2, time.time()), None)
                        # the share of the 2,000 users this rollout's buckets give the candidate (about 50 %)
                        expected = sum(in_candidate(state.rollout_id, user, 50) for user in USERS) / len(USERS)
                    result = run_wrk(stack.server.url, args.seconds, args.connections, args.entities)
                    assert result["non_200"] == 0 and result["socket_errors"] == 0, result
                    served = result["major_1"] + result["major_2"]
                    share = result["major_2"] / served
                    if mode == "none":
                        assert result["major_1"] == 0, result
                    else:  # wrk draws users at random: the served share is close to the users' share
                        assert abs(share - expected) <= 0.02 and abs(expected - 0.5) <= 0.05, (share, expected)
                    result["share_major_2"], result["users_share_major_2"] = share, expected
                    result["load_average"] = os.getloadavg()
                    runs[mode].append(result)
                    print(f"{mode:11} {result['requests_per_s']:8.1f} req/s  p99 {result['p99_ms']:6.1f} ms  "
                          f"major-2 share {share:.3f}  load {result['load_average'][0]:.2f}", flush=True)
        finally:
            stack.close()
    medians = {mode: {"requests_per_s": statistics.median(r["requests_per_s"] for r in rs),
                      "p99_ms": statistics.median(r["p99_ms"] for r in rs),
                      "p50_ms": statistics.median(r["p50_ms"] for r in rs)} for mode, rs in runs.items()}
    ratio = medians["rollout_50"]["requests_per_s"] / medians["none"]["requests_per_s"]
    per_round = [b["requests_per_s"] / a["requests_per_s"] for a, b in zip(runs["none"], runs["rollout_50"],
                                                                          strict=True)]
    print(f"median: none {medians['none']}, rollout 50% {medians['rollout_50']}; throughput ratio {ratio:.3f} "
          f"(per round {', '.join(f'{r:.3f}' for r in per_round)})")
    write("rollout_routing", vars(args), {"runs": runs, "medians": medians, "throughput_ratio_50_vs_none": ratio,
                                          "in_process_breakdown_us": parts,
                                          "throughput_ratio_per_round": per_round,
                                          "target": "rollout at 50% loses at most 10% of requests/s"})


if __name__ == "__main__":
    main()
