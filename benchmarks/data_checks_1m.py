"""Data checks (``feature-check --data``) on a 1 M-row Delta snapshot: target < 30 s, split by phase.

Writes a ``user_txn_stats`` table in the pipeline's Delta layout (``delta_schema``) with deltalake: a first version
of 90 % of the rows and an appended one with the rest, so the consistency check (time travel, PSI/KS on every
feature) has a previous version to compare with. Then runs the checks of that contract ``--repeat`` times and prints
the median per phase: reading both versions (Delta → Arrow), metrics (Arrow metrics, freshness, consistency, state
estimate), GX (pandas frame + suite validation), and the total. The one-off Great Expectations import and context
creation is timed separately (it is paid once per ``feature-check --data`` run, not per contract).

    .venv/bin/python benchmarks/data_checks_1m.py --rows 1000000 --repeat 3

Correctness: every run must have read the snapshot just written (the newest version, with the one before it as the
previous version). Raw results (every run's phases, medians, machine): benchmarks/results/data_checks_1m.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from deltalake import write_deltalake

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import _results  # noqa: E402

from pipelines.config import Settings  # noqa: E402
from pipelines.contracts.load import load_contract  # noqa: E402
from pipelines.contracts.model import Contract  # noqa: E402
from pipelines.delta.schema import delta_schema  # noqa: E402
from pipelines.delta.write import ensure_table  # noqa: E402

END = datetime(2026, 3, 1, tzinfo=UTC)


def rows_for(contract: Contract, entities: int, windows: int, first_window: int, seed: int,
             ingested_at: datetime) -> pa.Table:
    rng = np.random.default_rng(seed)
    n = entities * windows
    step_us = int(contract.step.total_seconds() * 1e6)
    end_us = int(END.timestamp() * 1e6)
    offsets = np.tile(np.arange(first_window, first_window + windows), entities)
    window_end = end_us - offsets * step_us
    keys = pc.binary_join_element_wise("u", pa.array(np.repeat(np.arange(entities), windows)).cast(pa.string()), "")
    columns: dict[str, pa.Array] = {contract.entity.join_keys[0]: keys,
                                    "window_start": pa.array(window_end - int(contract.max_window.total_seconds()
                                                                              * 1e6)),
                                    "window_end": pa.array(window_end)}
    for feature in contract.features:
        if feature.type == "int64":
            values = pa.array(rng.poisson(4, n).astype(np.int64))
        elif feature.type == "double":
            values = pa.array(rng.lognormal(3.2, 1.0, n))
        else:
            values = pa.array(np.array(["DE", "FR", "NL", "ES", "IT"])[rng.integers(0, 5, n)])
        mask = pa.array(rng.random(n) < 0.002)
        columns[feature.name] = pc.if_else(mask, pa.scalar(None, values.type), values)
    columns["ingested_at"] = pa.array(np.full(n, int(ingested_at.timestamp() * 1e6)))
    schema = delta_schema(contract)
    return pa.Table.from_arrays([columns[f.name].cast(f.type) for f in schema], schema=schema)


def build_table(settings: Settings, contract: Contract, rows: int) -> None:
    windows = 50
    entities = rows // windows
    table = ensure_table(contract, settings.delta_table_path(contract.table_name))
    older = windows // 10
    write_deltalake(table, rows_for(contract, entities, windows - older, older, 1, END - timedelta(hours=1)),
                    mode="append")
    write_deltalake(table, rows_for(contract, entities, older, 0, 2, END), mode="append")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    _results.start()

    loaded = load_contract(ROOT / "contracts" / "user_txn_stats.yaml")
    with tempfile.TemporaryDirectory(prefix="dq-bench-") as tmp:
        settings = Settings(data_dir=Path(tmp) / "data")
        started = time.perf_counter()
        build_table(settings, loaded.contract, args.rows)
        build_seconds = time.perf_counter() - started

        from pipelines.feature_check.data.checks import check_contract
        from pipelines.feature_check.data.gx_run import open_context

        started = time.perf_counter()
        context = open_context()
        gx_setup = time.perf_counter() - started

        runs = []
        for _ in range(args.repeat):
            result = check_contract(loaded, settings, base=None, now=END + timedelta(minutes=1),
                                    gx_context=lambda: context)
            runs.append(dict(result.timings))
            if result.snapshot_version is None or result.previous_version is None or \
                    result.snapshot_version <= result.previous_version:
                raise SystemExit(f"the checks read version {result.snapshot_version} (previous "
                                 f"{result.previous_version}), not the table just written")
        phases = ["read", "metrics", "gx_frame", "gx_validate", "total"]
        medians = {phase: round(statistics.median(run[phase] for run in runs), 3) for phase in phases}
        medians["gx"] = round(medians["gx_frame"] + medians["gx_validate"], 3)
        rules = sorted({f.rule for f in result.report.findings})
        summary = {"rows": args.rows, "repeat": args.repeat, "table_build_s": round(build_seconds, 2),
                   "gx_import_and_context_s": round(gx_setup, 2), "median_s": medians,
                   "first_run_incl_gx_import_s": round(gx_setup + runs[0]["total"], 2),
                   "snapshot_version": result.snapshot_version, "previous_version": result.previous_version,
                   "rules": rules, "runs_s": runs}
    print(json.dumps(summary, indent=2, default=str))
    _results.write("data_checks_1m", {"rows": args.rows, "repeat": args.repeat}, summary)


if __name__ == "__main__":
    main()
