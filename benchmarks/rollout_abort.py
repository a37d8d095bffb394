"""Time to abort: a fault is injected into the candidate during a 50 % step; how long until the controller records
the abort, what that time is made of, and how many entities the candidate served in requests sent after it was
recorded. On both rollout stores: SQLite (the default) and Redis (a real redis-server on 127.0.0.1).

The real stack (pipelines/testing/rollout_stack.py) with ``feature-platform serve`` routing per entity, the
controller running for real (wall clock, ``--interval`` seconds between evaluations, failure limit 2, in a thread)
with the health-based gates. Each of ``--runs`` runs per store: commit a fresh step of both majors (as the stream
would), start a rollout at 50 %, let it pass one evaluation, wait a random part of an interval (the fault lands at
any phase of the evaluation cycle), then delete the online values of 1 % of the candidate's entities from the real
SQLite online store (the fault) while four clients keep requesting 20 users at a time by contract name.

Reported per run, from the fault (``injected``):

* ``detection_s``: injected → the controller's abort decision (the evaluations that saw the fault; bounded by
  interval × failure limit + one measurement);
* ``write_s``: decision → the abort's transaction committed (``recorded``: the store's write returned);
* ``seconds_to_abort``: injected → recorded (target ≤ interval × failure limit + 1 s);
* ``measure_s``: the duration of each gate measurement of the run (an overrun delays detection);
* ``candidate_entities_after_abort``: entities served by major 2 in requests *sent* after the abort was recorded
  (read from ``x-served-versions``; target 0), and ``last_candidate_sent_minus_recorded_s``: when the last request
  the candidate served was sent, relative to the recording (negative: before it).

Checks (fails otherwise): every run ends aborted by the ``missing_rate`` gate; every client response is a 200.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from _results import start, write

from pipelines.feast_sync.online import load_latest_online
from pipelines.feast_sync.store import online_store_path, open_store
from pipelines.rollout import controller as ctl
from pipelines.rollout.gates import HealthGates
from pipelines.rollout.state import AuditEntry, RolloutState
from pipelines.rollout.store import RolloutStore
from pipelines.testing.redis_server import RedisServer
from pipelines.testing.rollout_stack import USERS, RolloutStack, build_stack, stream_one_step

FAILURE_LIMIT = 2


class RecordingStore:
    """The rollout store, noting the moment each abort's write returned (its transaction had committed)."""

    def __init__(self, inner: RolloutStore) -> None:
        self.inner, self.aborted_at = inner, None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def update(self, state: RolloutState, entry: AuditEntry | None) -> RolloutState:
        stored = self.inner.update(state, entry)
        if stored.phase == "aborted" and self.aborted_at is None:
            self.aborted_at = time.time()
        return stored


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


def one_run(stack: RolloutStack, interval: float, feast: object, rng: random.Random) -> dict:
    stream_one_step(stack)
    store = RecordingStore(stack.rollouts)
    state = ctl.start(store, stack.v2, stable_major=1, now=time.time(), interval_s=interval,  # type: ignore[arg-type]
                      failure_limit=FAILURE_LIMIT, stable=stack.v1)
    store.update(state.at_step(2, time.time()), None)
    gates = HealthGates(stack.settings, lambda _s: stack.v2, store=feast)
    measures: list[tuple[float, float]] = []

    def measure(rollout: RolloutState) -> Any:
        began = time.time()
        try:
            return gates(rollout)
        finally:
            measures.append((began, time.time()))

    controller = ctl.Controller(store, measure)  # type: ignore[arg-type]
    stop, done = threading.Event(), threading.Event()
    log: list[tuple[float, list[int]]] = []
    codes: dict[int, int] = {}
    runner = threading.Thread(target=controller.run, kwargs={"tick_s": 0.05, "stop": done.is_set})
    load = threading.Thread(target=lambda: asyncio.run(clients(stack.server.url, stop, log, codes)))
    runner.start()
    load.start()
    try:
        while not measures:
            time.sleep(0.01)
        time.sleep(rng.uniform(0, interval))  # the fault lands at any phase of the evaluation cycle
        injected_at = time.time()
        removed = inject_fault(stack)
        while store.aborted_at is None:
            assert time.time() - injected_at < 120, "no abort within 120 s"
            time.sleep(0.01)
        time.sleep(2.0)  # keep requesting after the abort
    finally:
        stop.set()
        done.set()
        runner.join(timeout=30)
        load.join(timeout=30)
    final = stack.rollouts.current("user_txn_stats")
    assert final is not None and final.phase == "aborted" and "gate missing_rate" in final.reason, final
    assert set(codes) == {200}, codes
    recorded, decided = store.aborted_at, final.step_started_at
    after = [major for sent, majors in log if sent > recorded for major in majors]
    candidate_sent = [sent for sent, majors in log if 2 in majors]
    durations = [end - began for began, end in measures]
    return {"seconds_to_abort": recorded - injected_at, "detection_s": decided - injected_at,
            "write_s": recorded - decided, "measure_s": durations,
            "evaluations_after_fault": sum(began >= injected_at for began, _ in measures),
            "entities_removed": removed,
            "candidate_entities_after_abort": after.count(2), "entities_after_abort": len(after),
            "requests_after_abort": sum(sent > recorded for sent, _ in log),
            "last_candidate_sent_minus_recorded_s": (max(candidate_sent) - recorded) if candidate_sent else None,
            "requests": sum(codes.values()), "reason": final.reason}


def run_store(kind: str, runs: int, interval: float, folder: Path, rng: random.Random) -> list[dict]:
    redis = RedisServer(folder / "redis") if kind == "redis" else None
    if redis is not None:
        redis.start()
    results = []
    try:
        stack = build_stack(folder / kind, workers=1, rollout_redis_url=redis.url if redis else None)
        feast = open_store(stack.settings)
        try:
            for run in range(runs):
                result = one_run(stack, interval, feast, rng)
                results.append(result)
                print(f"{kind} run {run + 1}: abort recorded {result['seconds_to_abort']:.2f} s after the fault "
                      f"(detection {result['detection_s']:.2f} s, write {1000 * result['write_s']:.1f} ms, "
                      f"measure max {max(result['measure_s']):.3f} s); candidate entities after: "
                      f"{result['candidate_entities_after_abort']} of {result['entities_after_abort']}", flush=True)
                load_latest_online(feast, stack.v2, stack.settings.delta_table_path(stack.v2.table_name))
        finally:
            stack.close()
    finally:
        if redis is not None:
            redis.stop()
    return results


def summarise(results: list[dict], interval: float) -> dict:
    measures = [m for r in results for m in r["measure_s"]]
    return {"median_s": statistics.median(r["seconds_to_abort"] for r in results),
            "max_s": max(r["seconds_to_abort"] for r in results),
            "median_detection_s": statistics.median(r["detection_s"] for r in results),
            "median_write_ms": 1000 * statistics.median(r["write_s"] for r in results),
            "median_measure_s": statistics.median(measures), "max_measure_s": max(measures),
            "target_s": interval * FAILURE_LIMIT + 1.0,
            "all_within_target": all(r["seconds_to_abort"] <= interval * FAILURE_LIMIT + 1.0 for r in results),
            "candidate_entities_after_abort": sum(r["candidate_entities_after_abort"] for r in results),
            "entities_after_abort": sum(r["entities_after_abort"] for r in results)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--stores", default="sqlite,redis", help="comma-separated: sqlite, redis")
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args()
    start()
    rng = random.Random(args.seed)
    by_store, summary = {}, {}
    with tempfile.TemporaryDirectory() as folder:
        for kind in args.stores.split(","):
            by_store[kind] = run_store(kind, args.runs, args.interval, Path(folder), rng)
            summary[kind] = summarise(by_store[kind], args.interval)
            s = summary[kind]
            print(f"{kind}: time to abort median {s['median_s']:.2f} s, max {s['max_s']:.2f} s (target "
                  f"{s['target_s']:.1f} s; detection median {s['median_detection_s']:.2f} s, write median "
                  f"{s['median_write_ms']:.1f} ms, measurement median {s['median_measure_s']:.3f} s, max "
                  f"{s['max_measure_s']:.3f} s); candidate entities in requests sent after the abort was recorded: "
                  f"{s['candidate_entities_after_abort']} of {s['entities_after_abort']}", flush=True)
    write("rollout_abort", vars(args), {"runs": by_store, "summary": summary})


if __name__ == "__main__":
    main()
