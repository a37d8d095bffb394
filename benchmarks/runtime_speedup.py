"""Benchmark: parallel speed-up of a CPU-bound cpu stage (build + validate Arrow batches): 2 pinned workers vs 1,
and pinned vs unpinned, medians of several runs.

Each item names a batch (seed, rows), as the commit stage's items name part files; the worker materialises the raw
event rows, builds an Arrow table, validates it (no null keys, amounts in range, timestamps ordered) and returns the
count of valid rows. Items are small, so the pipe is not what is measured. Worker start-up is excluded
(stages are started before timing).

    .venv/bin/python benchmarks/runtime_speedup.py --batches 48 --rows 20000 --repeat 3

Every variant must compute the same total (the sum of the valid-row counts over all batches), checked against a
single in-process computation: a variant that dropped or duplicated a batch would fail instead of looking fast.

Results: benchmarks/results/runtime_speedup.json (every run, the medians, machine information).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))  # spawned workers import this module by name

import _results  # noqa: E402

from pipelines.runtime import Stage, StageConfig, allowed_cpus  # noqa: E402


def make_batch(seed: int, rows: int) -> list[dict[str, Any]]:
    return [
        {"user_id": f"u{(seed * 7919 + i) % 5000}", "amount": ((seed + i) * 37) % 10_000 / 7.0, "ts": 1_700_000_000 + i}
        for i in range(rows)
    ]


def convert_and_validate(spec: tuple[int, int]) -> int:
    """CPU-bound: Python rows → Arrow table → vectorised checks → count of valid rows."""
    import pyarrow as pa
    import pyarrow.compute as pc

    table = pa.Table.from_pylist(make_batch(*spec))
    valid = pc.and_(
        pc.is_valid(table["user_id"]), pc.and_(pc.greater_equal(table["amount"], 0), pc.less(table["amount"], 2_000))
    )
    ordered = pc.all(pc.greater_equal(pc.subtract(table["ts"].slice(1), table["ts"].slice(0, len(table) - 1)), 0))
    keys = pc.count_distinct(table["user_id"]).as_py()
    return int(pc.sum(valid).as_py()) + int(ordered.as_py()) + 0 * keys


def timed(config: StageConfig, batches: list[tuple[int, int]]) -> tuple[float, int]:
    """Seconds of one pass over ``batches`` (workers started and warmed before) and the total it computed."""
    with Stage("bench-speedup", convert_and_validate, kind="cpu", config=config) as stage:
        list(stage.map(batches[:2]))  # warm the workers (pyarrow import)
        started = time.perf_counter()
        total = sum(stage.map(batches))
        elapsed = time.perf_counter() - started
    return elapsed, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=48)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    _results.start()
    cpus = allowed_cpus()
    batches = [(seed, args.rows) for seed in range(args.batches)]
    variants = {
        "1 worker, pinned": StageConfig(workers=1, cpus=cpus[:1]),
        f"{len(cpus)} workers, pinned": StageConfig(),
        f"{len(cpus)} workers, unpinned": StageConfig(pin=False),
    }
    expected = sum(convert_and_validate(batch) for batch in batches)  # in this process, untimed: the reference
    assert expected > 0
    runs: dict[str, list[float]] = {name: [] for name in variants}
    totals: dict[str, list[int]] = {name: [] for name in variants}
    for _ in range(args.repeat):
        for name, config in variants.items():  # interleaved, so machine noise hits all variants alike
            seconds, total = timed(config, batches)
            runs[name].append(seconds)
            totals[name].append(total)
            if total != expected:
                raise SystemExit(f"{name}: total {total} != {expected} computed in process: the variant is wrong")
    medians = {name: statistics.median(times) for name, times in runs.items()}
    base = medians["1 worker, pinned"]
    rows_total = args.batches * args.rows
    result = {"cpus": cpus, "expected_total": expected, "totals_equal": True, "variants": {}}
    for name, seconds in medians.items():
        result["variants"][name] = {
            "median_s": round(seconds, 3),
            "rows_per_s": round(rows_total / seconds),
            "speedup_vs_1": round(base / seconds, 2),
            "runs_s": [round(s, 3) for s in runs[name]],
            "totals": totals[name],
        }
        print(f"{name:<24} {seconds:7.3f} s  {rows_total / seconds:>10.0f} rows/s  speed-up {base / seconds:4.2f}x")
    print(f"every variant and run computed the same total ({expected:,})")
    _results.write("runtime_speedup", {"batches": args.batches, "rows": args.rows, "repeat": args.repeat}, result)


if __name__ == "__main__":
    main()
