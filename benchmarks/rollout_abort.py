"""Time to abort: a fault is injected into the candidate during a 50 % step; how long until the controller records
the abort, and how many entities the candidate served after that moment.

The real stack (pipelines/testing/rollout_stack.py) with ``feature-platform serve`` routing per entity, the
controller running for real (wall clock, ``--interval`` seconds between evaluations, failure limit 2, ticking every
50 ms in a thread) with the health-based gates. Each of ``--runs`` runs: commit a fresh step of both majors (as the
stream would), start a rollout at 50 %, let it pass one evaluation, then delete the online values of 1 % of the
candidate's entities from the real SQLite online store (the fault) while clients keep requesting by contract name.
Measured: injection → abort recorded (target ≤ interval × failure limit + 1 s), and entities served by major 2 in
requests sent after the abort was recorded (target 0). The candidate's online values are reloaded after each run.

Checks (fails otherwise): every run ends aborted by the ``missing_rate`` gate; every client response is a 200.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx
from _results import start, write

from pipelines.feast_sync.online import load_latest_online
from pipelines.feast_sync.store import online_store_path, open_store
from pipelines.rollout import controller as ctl
from pipelines.rollout.gates import HealthGates
from pipelines.testing.rollout_stack import USERS, RolloutStack, build_stack, stream_one_step


def inject_fault(stack: RolloutStack) -> int:
    with sqlite3.connect(online_store_path(stack.settings)) as db:
        table = next(name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")
                     if name.endswith("user_txn_stats_v2"))
        keys = [k for (k,) in db.execute(f"SELECT DISTINCT entity_key FROM {table} ORDER BY entity_key")]
        doomed = keys[::100][: len(USERS) // 100]
        db.executemany(f"DELETE FROM {table} WHERE entity_key = ?", [(k,) for k in doomed])
    return len(doomed)


async def clients(url: str, stop: threading.Event, log: list[tuple[float, list[int]]], codes: dict[int, int]) -> None:
    async def one(offset: int) -> None:
        async with httpx.AsyncClient(base_url=url, timeout=10) as http:
            batch = offset
            while not stop.is_set():
                users = USERS[(batch * 20) % len(USERS):][:20]
                batch += 4
                sent = time.time()
                response = await http.post("/get-online-features", json={
                    "features": ["user_txn_stats:txn_count_5m"], "entities": {"user_id": users}})
                codes[response.status_code] = codes.get(response.status_code, 0) + 1
                if response.status_code == 200:
                    log.append((sent, [int(v) for v in response.headers["x-served-versions"].split("=")[1].split(",")]))
    await asyncio.gather(*(one(i) for i in range(4)))


def one_run(stack: RolloutStack, interval: float, feast: object) -> dict:
    stream_one_step(stack)
    state = ctl.start(stack.rollouts, stack.v2, stable_major=1, now=time.time(), interval_s=interval, stable=stack.v1)
    stack.rollouts.update(state.at_step(2, time.time()), None)
    controller = ctl.Controller(stack.rollouts, HealthGates(stack.settings, lambda _s: stack.v2, store=feast))
    stop, done = threading.Event(), threading.Event()
    log: list[tuple[float, list[int]]] = []
    codes: dict[int, int] = {}
    runner = threading.Thread(target=controller.run, kwargs={"tick_s": 0.05, "stop": done.is_set})
    load = threading.Thread(target=lambda: asyncio.run(clients(stack.server.url, stop, log, codes)))
    runner.start()
    load.start()
    try:
        while stack.rollouts.current("user_txn_stats").last_evaluated_at is None:  # type: ignore[union-attr]
            time.sleep(0.05)
        injected_at = time.time()
        removed = inject_fault(stack)
        while stack.rollouts.current("user_txn_stats").phase != "aborted":  # type: ignore[union-attr]
            assert time.time() - injected_at < 120, "no abort within 120 s"
            time.sleep(0.02)
        seen_at = time.time()  # at most one poll (20 ms) after the abort was committed
        final = stack.rollouts.current("user_txn_stats")
        assert final is not None
        time.sleep(2.0)  # keep requesting after the abort
    finally:
        stop.set()
        done.set()
        runner.join(timeout=30)
        load.join(timeout=30)
    assert "gate missing_rate" in final.reason, final.reason
    assert set(codes) == {200}, codes
    aborted_at = final.step_started_at  # the controller's decision, just before it wrote the abort
    after = [major for sent, majors in log if sent > aborted_at for major in majors]
    return {"seconds_to_abort": seen_at - injected_at, "decided_after_s": aborted_at - injected_at,
            "entities_removed": removed,
            "candidate_entities_after_abort": after.count(2), "entities_after_abort": len(after),
            "requests": sum(codes.values()), "reason": final.reason}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--interval", type=float, default=1.0)
    args = parser.parse_args()
    start()
    results = []
    with tempfile.TemporaryDirectory() as folder:
        stack = build_stack(Path(folder), workers=1)
        feast = open_store(stack.settings)
        try:
            for run in range(args.runs):
                result = one_run(stack, args.interval, feast)
                results.append(result)
                print(f"run {run + 1}: abort after {result['seconds_to_abort']:.2f} s, candidate entities after the "
                      f"abort: {result['candidate_entities_after_abort']} of {result['entities_after_abort']}",
                      flush=True)
                load_latest_online(feast, stack.v2, stack.settings.delta_table_path(stack.v2.table_name))
        finally:
            stack.close()
    seconds = [r["seconds_to_abort"] for r in results]
    summary = {"median_s": statistics.median(seconds), "max_s": max(seconds),
               "target_s": args.interval * 2 + 1.0,
               "candidate_entities_after_abort": sum(r["candidate_entities_after_abort"] for r in results)}
    print(f"time to abort: median {summary['median_s']:.2f} s, max {summary['max_s']:.2f} s (target "
          f"{summary['target_s']:.1f} s); candidate entities served after the abort: "
          f"{summary['candidate_entities_after_abort']}")
    write("rollout_abort", vars(args), {"runs": results, "summary": summary})


if __name__ == "__main__":
    main()
