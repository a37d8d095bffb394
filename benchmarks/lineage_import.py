"""What building lineage requests costs to import: the SDK's models with and without its package ``__init__``.

``pipelines.lineage.sdk.skip_sdk_package_init`` registers the ``metadata`` package without running its ``__init__``
(which imports the SDK's profiler). This benchmark runs, side by side in fresh interpreters, the same work both
ways: import the generated models and build the whole lineage plan of the project's contracts (every request), and
checks each run built the same number of requests. Reported: median wall seconds of each, and the ratio. The machine
is shared (2 cores, other engineers' tests): the load average is in the results; the ratio is what counts.

    .venv/bin/python benchmarks/lineage_import.py --repeat 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
import _results  # noqa: E402

WORK = """
import json, sys, time, warnings
warnings.simplefilter("ignore")
started = time.perf_counter()
if sys.argv[1] == "full":
    import metadata  # the package __init__ runs (what a plain `import metadata.<...>` does)
from pipelines.config import Settings
from pipelines.contracts.valid import load_valid_contracts
from pipelines.lineage.plan import scope_for
settings = Settings()
contracts = load_valid_contracts(settings.contracts_dir)
plan = scope_for(settings, contracts).plan()
print(json.dumps({"seconds": time.perf_counter() - started, "requests": len(plan.requests)}))
"""


def one(mode: str) -> dict:
    done = subprocess.run([sys.executable, "-c", WORK, mode], capture_output=True, text=True, check=True, cwd=ROOT,
                          timeout=900)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    _results.start()
    runs: dict[str, list[dict]] = {"skip_package_init": [], "full_package_init": []}
    for _ in range(args.repeat):  # interleaved, so both see the same load
        runs["skip_package_init"].append(one("skip"))
        runs["full_package_init"].append(one("full"))
    counts = {run["requests"] for mode in runs.values() for run in mode}
    assert len(counts) == 1 and counts.pop() > 0, f"every run must build the same plan: {runs}"
    medians = {mode: statistics.median(r["seconds"] for r in mode_runs) for mode, mode_runs in runs.items()}
    results = {"runs": runs, "median_seconds": medians,
               "ratio_full_over_skip": medians["full_package_init"] / medians["skip_package_init"]}
    path = _results.write("lineage_import", {"repeat": args.repeat}, results)
    print(json.dumps(results["median_seconds"]), f"ratio {results['ratio_full_over_skip']:.1f}x ->", path)


if __name__ == "__main__":
    main()
