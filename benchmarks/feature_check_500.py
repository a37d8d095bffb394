"""Lint + breaking-change check of N generated contracts against a base in which all N differ (target: < 5 s for 500).

Builds a temporary git repository: the base commit holds N contracts, the head commit changes every one of them
(a feature added, a unit changed, a description edited, a minor version bump), then runs the installed
``feature-check contracts --base base`` several times and reports the median wall time, next to a lint-only run of
the same head, so the cost of ``--base`` shows as a ratio. Every run's output is checked, so neither can time a
no-op: lint must pass all N contracts (exit 0, no finding); ``--base`` must exit 1 with exactly the N/2 contracts whose
unit changed failing on ``feature-unit-changed`` (required bump major, declared minor) and a ``feature-added`` finding
on every contract. Raw results: ``benchmarks/results/feature_check_500.json``.

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
# the PR-shape helpers of the feature-check tests (tests/feature_check/, tests/check/ before the reorganisation)
sys.path.insert(0, str(next((p for p in (ROOT / "tests" / "feature_check", ROOT / "tests" / "check")
                             if (p / "prshape.py").exists()), ROOT / "tests" / "feature_check")))
import _results  # noqa: E402
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


def timed(repo: Path, *args: str) -> tuple[float, float, int, dict]:
    """Wall and CPU seconds of one run (CPU time is what a loaded, shared machine distorts least), exit code, output."""
    cpu = _child_cpu()
    start = time.perf_counter()
    result = subprocess.run([str(SCRIPT), "contracts", *args, "--format", "json"], cwd=repo, capture_output=True,
                            text=True, timeout=600, check=False)
    elapsed = time.perf_counter() - start
    if result.returncode not in (0, 1):
        raise SystemExit(f"feature-check exited {result.returncode}: {result.stderr}")
    return elapsed, _child_cpu() - cpu, result.returncode, json.loads(result.stdout)


def verify(label: str, count: int, returncode: int, document: dict) -> dict[str, int]:
    """Fail unless the run found what :func:`generate` put in (see the module docstring); return what it found."""
    contracts = document["contracts"]
    failed = sorted(c["name"] for c in contracts if not c["ok"])
    unit_changed = sorted({c["name"] for c in contracts for f in c["findings"] if f["rule"] == "feature-unit-changed"})
    added = sum(1 for c in contracts for f in c["findings"] if f["rule"] == "feature-added")
    found = {"exit": returncode, "contracts": len(contracts), "failed": len(failed),
             "unit_changed": len(unit_changed), "feature_added": added}
    if label == "lint":
        expected = {"exit": 0, "contracts": count, "failed": 0, "unit_changed": 0, "feature_added": 0}
    else:
        breaking = [f"c{i:04d}" for i in range(count) if i % 2]
        expected = {"exit": 1, "contracts": count, "failed": len(breaking), "unit_changed": len(breaking),
                    "feature_added": count}
        if found == expected and not (failed == unit_changed == breaking):
            raise SystemExit(f"{label}: the wrong contracts failed: {failed[:5]}… instead of {breaking[:5]}…")
        majors = sum(1 for c in contracts if c.get("change", {}).get("required_bump") == "major")
        if majors != len(breaking):
            raise SystemExit(f"{label}: {majors} contracts need a major bump instead of {len(breaking)}")
    if found != expected:
        raise SystemExit(f"{label}: found {found}, expected {expected}: the benchmark would time the wrong work")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contracts", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    _results.start()
    with tempfile.TemporaryDirectory() as folder:
        repo = Path(folder) / "repo"
        build = time.perf_counter()
        make_repo(repo, *generate(args.contracts))
        print(f"generated {args.contracts} contracts + changes in {time.perf_counter() - build:.1f} s", file=sys.stderr)
        runs: dict[str, list[float]] = {"lint": [], "lint+base": []}
        cpu: dict[str, list[float]] = {"lint": [], "lint+base": []}
        found: dict[str, dict[str, int]] = {}
        for _ in range(args.repeat):
            for label, extra in (("lint", ()), ("lint+base", ("--base", "base"))):
                elapsed, seconds, returncode, document = timed(repo, *extra)
                found[label] = verify(label, args.contracts, returncode, document)
                runs[label].append(elapsed)
                cpu[label].append(seconds)
    medians = {label: statistics.median(times) for label, times in runs.items()}
    cpu_medians = {label: statistics.median(times) for label, times in cpu.items()}
    result = {"median_s": medians, "median_cpu_s": cpu_medians, "all_s": runs, "all_cpu_s": cpu,
              "base_over_lint": medians["lint+base"] / medians["lint"], "target_s": 5.0,
              "verified_every_run": found}
    print(f"{args.contracts} contracts, median of {args.repeat}: lint {medians['lint']:.2f} s wall / "
          f"{cpu_medians['lint']:.2f} s CPU, lint + --base {medians['lint+base']:.2f} s wall / "
          f"{cpu_medians['lint+base']:.2f} s CPU (x{result['base_over_lint']:.2f}); target < 5 s; "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"every run verified: lint {found['lint']}; --base {found['lint+base']}")
    _results.write("feature_check_500", {"contracts": args.contracts, "repeat": args.repeat}, result)


if __name__ == "__main__":
    main()
