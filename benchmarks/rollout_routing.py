"""Routing cost: serving throughput and p99 with a rollout at 50 % against no rollout, side by side in one run.

One ``feature-platform serve`` process (``--workers``) over the real rollout stack (pipelines/testing/rollout_stack.py:
both majors of user_txn_stats in Delta and the Feast SQLite online store). Rounds alternate between no rollout (no
row in the rollout store: every entity goes to the newest major) and a rollout at 50 % (every entity hashed, half
served by major 1, the other half by major 2: two views read per request). Each round: ``--seconds`` of closed-loop
load from ``--concurrency`` asyncio clients (httpx), each request asking 2 features of ``--entities`` users by
contract name. Medians over ``--rounds`` rounds per mode.

Checks (fails otherwise): every response is a 200; with no rollout every entity is served by major 2; at 50 % the
share of entities served by major 2 is within 5 points of 50 % (or 3 standard deviations when few entities were
served).
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from _results import start, write

from pipelines.rollout import controller as ctl
from pipelines.testing.rollout_stack import USERS, build_stack


async def load(url: str, seconds: float, concurrency: int, entities: int) -> dict:
    latencies: list[float] = []
    codes: dict[int, int] = {}
    majors = {1: 0, 2: 0}
    deadline = time.perf_counter() + seconds

    async def client(offset: int) -> None:
        async with httpx.AsyncClient(base_url=url, timeout=10) as http:
            batch = offset
            while time.perf_counter() < deadline:
                users = USERS[(batch * entities) % len(USERS):][:entities]
                batch += concurrency
                sent = time.perf_counter()
                response = await http.post("/get-online-features", json={
                    "features": ["user_txn_stats:txn_count_5m", "user_txn_stats:amount_sum_5m"],
                    "entities": {"user_id": users}})
                latencies.append(time.perf_counter() - sent)
                codes[response.status_code] = codes.get(response.status_code, 0) + 1
                if response.status_code == 200:
                    for major in response.headers["x-served-versions"].split("=", 1)[1].split(","):
                        majors[int(major)] += 1

    started = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(concurrency)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {"requests": len(latencies), "requests_per_s": len(latencies) / elapsed,
            "p50_ms": 1000 * latencies[len(latencies) // 2], "p99_ms": 1000 * latencies[int(len(latencies) * 0.99)],
            "codes": codes, "entities_by_major": majors}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--entities", type=int, default=10)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    start()
    with tempfile.TemporaryDirectory() as folder:
        stack = build_stack(Path(folder), workers=args.workers)
        db = stack.settings.data_dir / "rollout" / "rollouts.sqlite"
        runs: dict[str, list[dict]] = {"none": [], "rollout_50": []}
        try:
            for _ in range(args.rounds):
                for mode in ("none", "rollout_50"):
                    with sqlite3.connect(db) as raw:
                        raw.execute("DELETE FROM rollouts")
                    if mode == "rollout_50":
                        state = ctl.start(stack.rollouts, stack.v2, stable_major=1, now=time.time(), stable=stack.v1)
                        stack.rollouts.update(state.at_step(2, time.time()), None)
                    time.sleep(1.2)  # every worker's router has re-read the store
                    result = asyncio.run(load(stack.server.url, args.seconds, args.concurrency, args.entities))
                    assert set(result["codes"]) == {200}, result["codes"]
                    served = result["entities_by_major"]
                    share = served[2] / (served[1] + served[2])
                    if mode == "none":
                        assert served[1] == 0, served
                    else:  # within 3 standard deviations of a fair coin over the entities served (and 5 points)
                        n = served[1] + served[2]
                        assert abs(share - 0.5) <= max(0.05, 1.5 / n**0.5), (share, n)
                    result["share_major_2"] = share
                    runs[mode].append(result)
                    print(f"{mode:11} {result['requests_per_s']:8.1f} req/s  p99 {result['p99_ms']:6.1f} ms  "
                          f"major-2 share {share:.3f}", flush=True)
        finally:
            stack.close()
    medians = {mode: {"requests_per_s": statistics.median(r["requests_per_s"] for r in rs),
                      "p99_ms": statistics.median(r["p99_ms"] for r in rs),
                      "p50_ms": statistics.median(r["p50_ms"] for r in rs)} for mode, rs in runs.items()}
    ratio = medians["rollout_50"]["requests_per_s"] / medians["none"]["requests_per_s"]
    print(f"median: none {medians['none']}, rollout 50% {medians['rollout_50']}; throughput ratio {ratio:.3f}")
    write("rollout_routing", vars(args), {"runs": runs, "medians": medians, "throughput_ratio_50_vs_none": ratio,
                                          "target": "rollout at 50% loses at most 10% of requests/s"})


if __name__ == "__main__":
    main()
