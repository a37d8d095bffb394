"""Shadow cost: serving throughput and p99 with a rollout in shadow (every request also reads the candidate, off the
response path) against no rollout and a rollout at 50 %, side by side in one run.

The same stack and load as ``benchmarks/rollout_routing.py`` (its ``load`` is reused): one ``feature-platform
serve`` process over both majors of user_txn_stats in the Feast SQLite online store; rounds alternate between the
modes; each round ``--seconds`` of closed-loop load from ``--concurrency`` clients asking 2 features of
``--entities`` users by contract name. Medians over ``--rounds`` rounds per mode. The shadow mode runs with the
default settings (every request shadowed, at most 16 shadow reads in flight per worker).

Checks (fails otherwise): every response is a 200; in shadow every entity is served by major 1 (the stable one) and
the shadow comparisons recorded on ``/metrics`` in that round cover the entities served (compared + dropped), with
every compared entity a ``match`` (both majors hold the same values in this stack).
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

import requests
from _results import start, write
from prometheus_client.parser import text_string_to_metric_families
from rollout_routing import load

from pipelines.rollout import controller as ctl
from pipelines.testing.rollout_stack import build_stack

MODES = ("none", "shadow", "rollout_50")


def shadow_counts(url: str) -> dict[str, float]:
    """Cumulative shadow comparisons by outcome, plus ``dropped``."""
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(requests.get(url + "/metrics", timeout=10).text):
        for sample in family.samples:
            if sample.name == "fp_rollout_shadow_comparisons_total":
                out[sample.labels["outcome"]] = out.get(sample.labels["outcome"], 0.0) + sample.value
            elif sample.name == "fp_rollout_shadow_dropped_total":
                out["dropped"] = out.get("dropped", 0.0) + sample.value
    return out


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
        runs: dict[str, list[dict]] = {mode: [] for mode in MODES}
        try:
            for _ in range(args.rounds):
                for mode in MODES:
                    with sqlite3.connect(db) as raw:
                        raw.execute("DELETE FROM rollouts")
                    if mode != "none":
                        state = ctl.start(stack.rollouts, stack.v2, stable_major=1, now=time.time(), stable=stack.v1)
                        if mode == "rollout_50":
                            stack.rollouts.update(state.at_step(2, time.time()), None)
                    time.sleep(1.2)  # every worker's router has re-read the store
                    before = shadow_counts(stack.server.url)
                    result = asyncio.run(load(stack.server.url, args.seconds, args.concurrency, args.entities))
                    time.sleep(0.5)  # the last shadow reads finish after their answers
                    after = shadow_counts(stack.server.url)
                    assert set(result["codes"]) == {200}, result["codes"]
                    served = result["entities_by_major"]
                    shadow = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after}
                    if mode == "shadow":
                        assert served[2] == 0, served
                        assert sum(shadow.values()) == served[1], (shadow, served)
                        assert set(k for k, v in shadow.items() if v) <= {"match", "dropped"}, shadow
                    else:
                        assert sum(shadow.values()) == 0, shadow
                    result["shadow"] = shadow
                    runs[mode].append(result)
                    print(f"{mode:11} {result['requests_per_s']:8.1f} req/s  p99 {result['p99_ms']:6.1f} ms  "
                          f"shadow {shadow}", flush=True)
        finally:
            stack.close()
    medians = {mode: {"requests_per_s": statistics.median(r["requests_per_s"] for r in rs),
                      "p99_ms": statistics.median(r["p99_ms"] for r in rs),
                      "p50_ms": statistics.median(r["p50_ms"] for r in rs)} for mode, rs in runs.items()}
    ratios = {f"{mode}_vs_none": medians[mode]["requests_per_s"] / medians["none"]["requests_per_s"]
              for mode in ("shadow", "rollout_50")}
    print(f"medians {medians}; throughput ratios {ratios}")
    write("rollout_shadow", vars(args), {"runs": runs, "medians": medians, "throughput_ratios": ratios,
                                         "note": "shadow: every request also reads the candidate after its answer "
                                                 "(sample 1.0, cap 16 per worker); same worker CPU"})


if __name__ == "__main__":
    main()
