"""Benchmark: the main job end to end (`feature-platform run`) at several event counts, medians of repeated runs.

Reports per run size: median wall time of the whole command, of the Flink step, events per second through Flink (all
sources together), and peak resident memory of the Python process and of the JVM. Run it on an otherwise idle machine:

    .venv/bin/python benchmarks/main_job.py --events 20000 100000 --repeat 3

Every run must account for its input (``feature-platform run --json``: at least the asked events read, ``ok``, i.e.
accepted events + dead letters == input lines for every table) or the benchmark fails. Results are printed as a
table; raw results (every run, medians, machine) go to benchmarks/results/main_job.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _results

ROOT = Path(__file__).resolve().parent.parent


def run_once(events: int, data_dir: Path) -> dict:
    env = {**os.environ, "FP_DATA_DIR": str(data_dir)}
    command = [str(Path(sys.executable).with_name("feature-platform")), "run", "--events", str(events), "--json"]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    wall = time.perf_counter() - started
    summary = json.loads(result.stdout)
    check(summary, events)
    flink = next(seconds for step, seconds in summary["step_seconds"].items() if step.startswith("flink"))
    return {"wall_s": wall, "flink_s": flink, "input_events": sum(summary["input_lines"].values()),
            "python_mib": summary["peak_memory_mib"]["python"], "jvm_mib": summary["peak_memory_mib"]["jvm"]}


def check(summary: dict, events: int) -> None:
    """Fail unless the run read the generated events and accounted for every line of them."""
    total = sum(summary["input_lines"].values())
    if total < events:
        raise SystemExit(f"the run read {total} lines, fewer than the {events} events per source asked for")
    if summary.get("ok") is not True:  # ok = balanced: accepted events + dead letters == input lines, every table
        raise SystemExit(f"the run did not account for every line: {summary}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, nargs="+", default=[20_000, 100_000], help="events per source")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    _results.start()
    rows = []
    for events in args.events:
        runs = []
        for _ in range(args.repeat):
            with tempfile.TemporaryDirectory(prefix="fp-bench-") as folder:
                runs.append(run_once(events, Path(folder)))
        median = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
        median["events_per_source"] = events
        median["flink_events_per_s"] = median["input_events"] / median["flink_s"]
        rows.append({**median, "runs": runs})
        print(f"{events:>10,} events/source  wall {median['wall_s']:6.1f}s  flink {median['flink_s']:6.1f}s "
              f"({median['flink_events_per_s']:,.0f} ev/s)  python {median['python_mib']:.0f} MiB  "
              f"jvm {median['jvm_mib']:.0f} MiB  (median of {args.repeat})", flush=True)
    _results.write("main_job", {"events_per_source": args.events, "repeat": args.repeat}, {"sizes": rows})


if __name__ == "__main__":
    main()
