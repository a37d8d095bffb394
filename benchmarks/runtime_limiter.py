"""Benchmark: HybridLimiter precision (achieved vs configured rate) and per-acquire overhead, beside aiolimiter.

For each configured rate (default 1 k, 10 k and 50 k ops/s) one caller acquires as fast as it can for ``--seconds``
(default 10) after draining the initial burst; the achieved rate is acquisitions / elapsed. Burst is 10 ms of rate for
every limiter (aiolimiter: ``AsyncLimiter(rate / 100, 0.01)``, the same bucket). Overhead is the cost of one
uncontended acquire+release (a rate so high it never waits). Every figure is the median of ``--repeat`` runs.

    .venv/bin/python benchmarks/runtime_limiter.py --seconds 10 --repeat 3

aiolimiter is imported lazily; when it is not installed its columns say so. Correctness: our limiter must never
exceed its configured rate (by more than 1 %, the burst plus timer slack) in any run, or the benchmark fails.
Raw results (every run, medians, machine): benchmarks/results/runtime_limiter.json.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _results

from pipelines.runtime import HybridLimiter

ROOT = Path(__file__).resolve().parent.parent


def _aiolimiter() -> Any | None:
    try:
        import aiolimiter
    except ImportError:
        return None
    return aiolimiter


def achieved_thread(rate: float, seconds: float) -> float:
    limiter = HybridLimiter(rate, burst=max(1, int(rate / 100)))
    with limiter.acquire(limiter.burst):  # start from an empty bucket: measure the rate, not the burst
        pass
    count = 0
    started = time.perf_counter()
    end = started + seconds
    while True:
        with limiter.acquire():
            count += 1
        if count % 64 == 0 and time.perf_counter() >= end:
            break
    return count / (time.perf_counter() - started)


def achieved_async(rate: float, seconds: float, make: Callable[[], Any]) -> float:
    async def run() -> float:
        limiter = make()
        for _ in range(max(1, int(rate / 100))):  # drain the initial burst
            async with limiter:
                pass
        count = 0
        started = time.perf_counter()
        end = started + seconds
        while True:
            async with limiter:
                count += 1
            if count % 64 == 0 and time.perf_counter() >= end:
                break
        return count / (time.perf_counter() - started)

    return asyncio.run(run())


class _OursAsync:
    """Our async path with aiolimiter's calling convention (``async with limiter``)."""

    def __init__(self, rate: float) -> None:
        self._limiter = HybridLimiter(rate, burst=max(1, int(rate / 100)))

    async def __aenter__(self) -> None:
        self._permit = self._limiter.acquire_async()
        await self._permit.__aenter__()

    async def __aexit__(self, *exc: object) -> None:
        await self._permit.__aexit__(None, None, None)


def overhead_us(n: int = 200_000) -> dict[str, float | None]:
    huge = 1e12
    limiter = HybridLimiter(huge, burst=10**9)
    capped = HybridLimiter(huge, burst=10**9, max_concurrency=8)
    results: dict[str, float | None] = {}
    for label, lim in (("ours_thread", limiter), ("ours_thread_with_cap", capped)):
        started = time.perf_counter()
        for _ in range(n):
            with lim.acquire():
                pass
        results[label] = (time.perf_counter() - started) / n * 1e6

    async def loop(make: Callable[[], Any]) -> float:
        lim = make()
        started = time.perf_counter()
        for _ in range(n):
            async with lim:
                pass
        return (time.perf_counter() - started) / n * 1e6

    results["ours_async"] = asyncio.run(loop(lambda: _OursAsync(huge)))
    aio = _aiolimiter()
    results["aiolimiter_async"] = asyncio.run(loop(lambda: aio.AsyncLimiter(10**9, 1e-3))) if aio is not None else None
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", type=float, nargs="+", default=[1_000, 10_000, 50_000])
    parser.add_argument("--seconds", type=float, default=10.0, help="measuring time per rate and run")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    _results.start()
    aio = _aiolimiter()
    if aio is None:
        print("aiolimiter is not installed: its columns are empty (add it as a dev dependency to compare)")
    table: list[dict[str, Any]] = []
    for rate in args.rates:
        runs: dict[str, list[float]] = {"ours_thread": [], "ours_async": [], "aiolimiter_async": []}
        for _ in range(args.repeat):
            runs["ours_thread"].append(achieved_thread(rate, args.seconds))
            runs["ours_async"].append(achieved_async(rate, args.seconds, lambda r=rate: _OursAsync(r)))
            if aio is not None:
                bucket = max(1, int(rate / 100))
                runs["aiolimiter_async"].append(
                    achieved_async(rate, args.seconds, lambda b=bucket: aio.AsyncLimiter(b, 0.01))
                )
        for label in ("ours_thread", "ours_async"):
            if max(runs[label]) > rate * 1.01:
                raise SystemExit(f"{label} exceeded {rate:,.0f}/s: {runs[label]}")
        row: dict[str, Any] = {"configured": rate, "runs": runs}
        for label, values in runs.items():
            median = statistics.median(values) if values else None
            row[label] = median
            row[f"{label}_error_pct"] = None if median is None else round((median / rate - 1) * 100, 2)
        table.append(row)
        print(
            f"{rate:>8.0f}/s  ours(thread) {row['ours_thread']:>9.1f} ({row['ours_thread_error_pct']:+.2f}%)  "
            f"ours(async) {row['ours_async']:>9.1f} ({row['ours_async_error_pct']:+.2f}%)  "
            + (
                f"aiolimiter {row['aiolimiter_async']:>9.1f} ({row['aiolimiter_async_error_pct']:+.2f}%)"
                if row["aiolimiter_async"] is not None
                else "aiolimiter: not installed"
            )
        )
    overheads = [overhead_us() for _ in range(args.repeat)]
    overhead = {
        k: (statistics.median(o[k] for o in overheads) if overheads[0][k] is not None else None) for k in overheads[0]
    }
    print(
        "per-acquire overhead (µs, uncontended): "
        + ", ".join(f"{k} {v:.2f}" if v is not None else f"{k} not installed" for k, v in overhead.items())
    )
    result = {"rates": table, "overhead_us": overhead, "overhead_runs_us": overheads}
    _results.write("runtime_limiter", {"rates": args.rates, "seconds": args.seconds, "repeat": args.repeat}, result)


if __name__ == "__main__":
    main()
