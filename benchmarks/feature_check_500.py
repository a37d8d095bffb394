"""Lint + breaking-change check of N generated contracts against a base in which all N differ (target: < 5 s for 500).

Builds a temporary git repository: the base commit holds N contracts, the head commit changes every one of them
(a feature added, a unit changed, a description edited, a minor version bump), then runs the installed
``feature-check contracts --base base`` several times and reports the median wall time, next to a lint-only run of
the same head, so the cost of ``--base`` shows as a ratio. Results also go to ``benchmarks/results/``.

    .venv/bin/python benchmarks/feature_check_500.py --contracts 500 --repeat 5
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "check"))
from prshape import contract, dump, feature, make_repo  # noqa: E402

SCRIPT = Path(sys.executable).with_name("feature-check")


def generate(count: int) -> tuple[dict[str, str], dict[str, str | None]]:
    base: dict[str, str] = {}
    head: dict[str, str | None] = {}
    for i in range(count):
        name = f"c{i:04d}"
        features = [feature(f"f{j}", "sum", "amount", "double", unit="EUR") for j in range(8)]
        old = contract(name, *features)
        new = contract(name, *features, feature(f"added_{i}", "count", None, "int64"), version="1.1.0",
                       description=f"The {name} features, edited.")
        new["features"][0]["unit"] = "USD" if i % 2 else "EUR"  # half of them also break: a semantic change
        base[f"contracts/{name}.yaml"] = dump(old)
        head[f"contracts/{name}.yaml"] = dump(new)
    return base, head


def _child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(repo: Path, *args: str) -> tuple[float, float, int]:
    """Wall and CPU seconds of one run (CPU time is what a loaded, shared machine distorts least)."""
    cpu = _child_cpu()
    start = time.perf_counter()
    result = subprocess.run([str(SCRIPT), "contracts", *args, "--format", "json"], cwd=repo, capture_output=True,
                            text=True, timeout=600, check=False)
    elapsed = time.perf_counter() - start
    if result.returncode == 2:
        raise SystemExit(result.stderr)
    return elapsed, _child_cpu() - cpu, len(json.loads(result.stdout)["contracts"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contracts", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        repo = Path(folder) / "repo"
        build = time.perf_counter()
        make_repo(repo, *generate(args.contracts))
        print(f"generated {args.contracts} contracts + changes in {time.perf_counter() - build:.1f} s", file=sys.stderr)
        runs: dict[str, list[float]] = {"lint": [], "lint+base": []}
        cpu: dict[str, list[float]] = {"lint": [], "lint+base": []}
        for _ in range(args.repeat):
            for label, extra in (("lint", ()), ("lint+base", ("--base", "base"))):
                elapsed, seconds, checked = timed(repo, *extra)
                assert checked == args.contracts, checked
                runs[label].append(elapsed)
                cpu[label].append(seconds)
    medians = {label: statistics.median(times) for label, times in runs.items()}
    cpu_medians = {label: statistics.median(times) for label, times in cpu.items()}
    result = {"contracts": args.contracts, "repeat": args.repeat, "median_s": medians, "median_cpu_s": cpu_medians,
              "all_s": runs, "base_over_lint": medians["lint+base"] / medians["lint"], "target_s": 5.0,
              "load_average": os.getloadavg()}
    print(f"{args.contracts} contracts, median of {args.repeat}: lint {medians['lint']:.2f} s wall / "
          f"{cpu_medians['lint']:.2f} s CPU, lint + --base {medians['lint+base']:.2f} s wall / "
          f"{cpu_medians['lint+base']:.2f} s CPU (x{result['base_over_lint']:.2f}); target < 5 s; "
          f"load average {os.getloadavg()[0]:.1f}")
    out = ROOT / "benchmarks" / "results"
    out.mkdir(exist_ok=True)
    (out / "feature_check_500.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
