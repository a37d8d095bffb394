"""Benchmark: end-to-end throughput, local JSON event files → committed Delta rows, and where the time goes.

One run of this script, on the same generated events (one source, the contracts reading it):

* ``generate``   the seeded generator writing the events (events/s).
* ``pandas``     a plain single-process pandas implementation of the same windows (read JSON lines, classify
                 nothing-is-bad, explode to window ends, group) — the baseline of the ratio.
* ``streaming``  :func:`pipelines.jobs.compute.run_contracts` (streaming mode, parallelism 2, the events in ONE file:
                 several files in a streaming run are read in listing order and can turn whole files into late events;
                 docs/sources.md).
* ``batch``      :func:`pipelines.jobs.backfill.run_backfill` over the same events cut into ``--files`` files
                 (batch mode is order-safe, so the files are parallel splits), same SQL, into Delta.
* ``--profile``  the breakdown, each a Flink job of its own over the one-file events (cumulative stages, sinks are
                 ``blackhole`` unless said): job start (1 line), read raw lines + rowtime, + classification,
                 + parsing and windows, + CSV sinks (the generated job), and the same with ``pipeline.object-reuse``.

Correctness: after every Flink run the committed Delta rows of each contract are compared with the pandas baseline's
rows (computed untimed when the ``pandas`` mode is not asked for): the same keys and windows, integers and strings
equal, doubles equal within 1e-9 relative (the summation order differs). Any difference fails the benchmark, so no mode
is timed doing less work than the baseline. Each mode runs ``--repeat`` times (default 3); medians are reported.

Peak resident memory of this Python process and of the JVM (one JVM per process: all Flink jobs of the run share it)
is read at the end (:func:`pipelines.resources.peak_memory_mib`). Example:

    .venv/bin/python benchmarks/streaming_throughput.py --events 10000000 --profile
    .venv/bin/python benchmarks/streaming_throughput.py --events 200000 --repeat 3

Results: a table on stdout and ``benchmarks/results/streaming_throughput.json`` (every run, medians, machine).
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
SOURCE = "transactions"


def _contracts(names: list[str]) -> list[Any]:
    from pipelines.contracts.load import load_contract

    return [load_contract(ROOT / "contracts" / f"{name}.yaml").contract for name in names]


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


# ------------------------------------------------------------------------------------------------------------ pandas


def pandas_windows(files: list[Path], contracts: list[Any]) -> dict[str, Any]:
    """The contracts' window rows with pandas in one process, a frame per table (the same windows as the Flink job).

    Lines are read with pyarrow's JSON reader (the fastest single-process route; ``pandas.read_json`` is several
    times slower). Every generated line is good, so no classification is needed; each event is exploded into the
    window ends whose largest window contains it, then each feature is aggregated over its own size.
    """
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.json as pajson

    table = pa.concat_tables([pajson.read_json(path) for path in files])
    frame = table.to_pandas()
    rows = {}
    for contract in contracts:
        keys = list(contract.entity.join_keys)
        step, size = pd.Timedelta(contract.step), pd.Timedelta(contract.max_window)
        slides = int(size / step)
        times = pd.to_datetime(frame[contract.source.event_time].str.replace("Z", "", regex=False))
        base = frame[[*keys, *{f.column for f in contract.features if f.column}]].assign(_t=times)
        first_end = times.dt.floor(step) + step
        if slides == 1:
            exploded = base.assign(window_end=first_end)
        else:
            exploded = base.loc[base.index.repeat(slides)]
            exploded = exploded.assign(window_end=first_end.loc[exploded.index].to_numpy()
                                       + step * np.tile(np.arange(slides), len(base)))
            exploded = exploded[exploded["window_end"] - size <= exploded["_t"]]
        out = None
        empty: list[tuple[str, Any]] = []
        for feature in contract.features:
            part = exploded
            if pd.Timedelta(feature.window.size) < size:
                part = part[part["_t"] >= part["window_end"] - pd.Timedelta(feature.window.size)]
            grouped = part.groupby([*keys, "window_end"], sort=False, dropna=False)
            match feature.aggregation:
                case "count":
                    values = grouped.size() if feature.column is None else grouped[feature.column].count()
                case "count_distinct":
                    values = grouped[feature.column].nunique()
                case "last":
                    values = part.sort_values(["_t", feature.column]).groupby([*keys, "window_end"],
                                                                              dropna=False)[feature.column].last()
                case "sum":  # events whose column is all null: NULL, as Flink's SUM (pandas' plain sum gives 0)
                    values = grouped[feature.column].sum(min_count=1)
                case other:
                    values = grouped[feature.column].agg(other if other != "avg" else "mean")
            out = values.rename(feature.name).to_frame() if out is None else out.join(values.rename(feature.name),
                                                                                       how="outer")
            if feature.aggregation in ("count", "count_distinct", "sum") and part is not exploded:
                # a window row with no event in this feature's smaller window: Flink gives 0 (the generated SQL's
                # COUNT and its CASE for sums), the outer join NaN
                empty.append((feature.name, values.index))
        for name, present in empty:
            out.loc[~out.index.isin(present), name] = 0
        rows[contract.table_name] = out.reset_index()
    return rows


TOLERANCE = 1e-9  # relative, for doubles


def compare_with_pandas(reference: Any, committed: Any, contract: Any) -> dict[str, int]:
    """Fail unless the committed Delta rows equal the pandas rows (module docstring); return what was compared.

    Several commits of one window (a replay) are reduced to the newest (``ingested_at``), as readers do.
    """
    import numpy as np
    import pandas as pd

    keys = [*contract.entity.join_keys, "window_end"]
    features = [f.name for f in contract.features]
    duplicates = int(committed.duplicated(keys).sum())
    if duplicates:
        committed = committed.sort_values("ingested_at").drop_duplicates(keys, keep="last")

    def normalised(frame: Any) -> Any:
        frame = frame[[*keys, *features]].copy()
        end = pd.to_datetime(frame["window_end"])
        frame["window_end"] = (end.dt.tz_convert("UTC").dt.tz_localize(None) if end.dt.tz is not None
                               else end).astype("datetime64[us]")
        return frame.set_index(keys).sort_index()

    ours, theirs = normalised(committed), normalised(reference)
    table = contract.table_name
    if not ours.index.equals(theirs.index):
        missing, extra = theirs.index.difference(ours.index), ours.index.difference(theirs.index)
        raise SystemExit(f"{table}: Flink and pandas disagree on the rows: {len(missing)} windows only in pandas "
                         f"(e.g. {list(missing[:3])}), {len(extra)} only in Flink (e.g. {list(extra[:3])})")
    for feature in contract.features:
        left, right = ours[feature.name], theirs[feature.name]
        both_null = left.isna().to_numpy() & right.isna().to_numpy()
        if feature.type == "double":
            a, b = left.to_numpy(dtype=float), right.to_numpy(dtype=float)
            equal = both_null | (np.abs(a - b) <= TOLERANCE * np.maximum(np.abs(a), np.abs(b)))
        else:
            equal = both_null | (left.astype(object).to_numpy() == right.astype(object).to_numpy())
        if not equal.all():
            first = int(np.flatnonzero(~equal)[0])
            raise SystemExit(f"{table}.{feature.name}: {int((~equal).sum())} of {len(equal)} values differ, e.g. "
                             f"{ours.index[first]}: Flink {left.iloc[first]!r}, pandas {right.iloc[first]!r}")
    return {"rows": len(ours), "features": len(features), "replayed_duplicates": duplicates}


def check_run(reference: dict[str, Any], contracts: list[Any], settings: Any) -> dict[str, Any]:
    """Compare every contract's committed Delta table with the pandas reference."""
    from deltalake import DeltaTable

    return {c.table_name: compare_with_pandas(reference[c.table_name], DeltaTable(str(
        settings.delta_table_path(c.table_name))).to_pandas(), c) for c in contracts}


# ------------------------------------------------------------------------------------------------------ flink pieces


def _blackhole(statement: str) -> str:
    """A sink DDL with its connector options replaced by the blackhole connector."""
    head = statement[: statement.index(") WITH (")]
    return f"{head}) WITH ('connector' = 'blackhole')"


def profile_jobs(contracts: list[Any], one_file_dir: Path, work: Path, parallelism: int,
                 tiny_dir: Path) -> dict[str, float]:
    """Job seconds of the cumulative stages (see the module docstring), each its own Flink job."""
    from pipelines.codegen.flink_sql import JobSql, OutputPaths, build_job_sql
    from pipelines.flink.environment import FlinkOptions
    from pipelines.flink.job import run_job

    def job_for(events: Path, tag: str) -> JobSql:
        outputs = {c.table_name: OutputPaths((work / tag / c.table_name / "f").as_uri(),
                                             (work / tag / c.table_name / "d").as_uri()) for c in contracts}
        return build_job_sql(contracts, {SOURCE: events.as_uri()}, outputs)

    def run(job: JobSql, tag: str, extra: dict[str, str] | None = None) -> float:
        options = FlinkOptions(checkpoint_dir=work / tag / "ckpt", parallelism=parallelism)
        if extra:
            _EXTRA_CONFIG.update(extra)
        try:
            result = run_job(job, options)
        finally:
            _EXTRA_CONFIG.clear()
        return result.setup_seconds + result.job_seconds

    full = job_for(one_file_dir, "full")
    is_sink = re.compile(r"^CREATE TEMPORARY TABLE `\w+__(features|dead_letters)`")
    sinks_to_blackhole = tuple(_blackhole(s) if is_sink.match(s) else s for s in full.ddl)
    source_table = f"`{SOURCE}__source`"
    raw_sink = "CREATE TEMPORARY TABLE `bh_raw` (l STRING, t TIMESTAMP(3)) WITH ('connector' = 'blackhole')"
    reason_sink = "CREATE TEMPORARY TABLE `bh_reason` (r STRING) WITH ('connector' = 'blackhole')"
    classified = [f"`{c.table_name}__classified`" for c in contracts]
    tiny = job_for(tiny_dir, "tiny")
    results = {
        "job start (1 line, full job)": run(tiny, "tiny"),
        "read raw lines + rowtime": run(JobSql((*full.ddl, raw_sink), (
            f"INSERT INTO `bh_raw` SELECT _line, _rowtime FROM {source_table}",)), "raw"),
        "+ classification (CASE, JSON_VALUE)": run(JobSql((*full.ddl, reason_sink), tuple(
            f"INSERT INTO `bh_reason` SELECT _error_reason FROM {view}" for view in classified)), "classify"),
        "+ parsing and windows (blackhole sinks)": run(JobSql(sinks_to_blackhole, full.inserts), "windows"),
        "+ CSV sinks (the generated job)": run(full, "csv"),
        "generated job, pipeline.object-reuse": run(job_for(one_file_dir, "reuse"), "reuse",
                                                    {"pipeline.object-reuse": "true"}),
    }
    return results


_EXTRA_CONFIG: dict[str, str] = {}


def _install_extra_config_hook() -> None:
    """Let profile variants add Flink options without touching the library (wraps flink_configuration)."""
    import pipelines.flink.environment as environment

    original = environment.flink_configuration

    def configured(options: Any) -> dict[str, str]:
        return {**original(options), **_EXTRA_CONFIG}

    environment.flink_configuration = configured


# -------------------------------------------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--files", type=int, default=8, help="files for the batch (backfill) run")
    parser.add_argument("--contracts", nargs="+", default=["merchant_risk_profile"])
    parser.add_argument("--parallelism", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3, help="runs per mode (medians reported)")
    parser.add_argument("--modes", nargs="+", default=["pandas", "streaming", "batch"],
                        choices=["pandas", "streaming", "batch"])
    parser.add_argument("--profile", action="store_true", help="also run the where-does-the-time-go breakdown")
    parser.add_argument("--hours", type=float, default=24.0, help="event-time span of the events")
    parser.add_argument("--entities", type=int, default=20_000)
    parser.add_argument("--name", default="streaming_throughput", help="results file name (benchmarks/results/)")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it (default: a temporary one)")
    args = parser.parse_args()
    import _results

    _results.start()

    from pipelines.config import Settings
    from pipelines.jobs.backfill import run_backfill
    from pipelines.jobs.compute import run_contracts
    from pipelines.resources import peak_memory_mib
    from pipelines.sources.generator import SourceSpec, safe_jitter, write_events

    _install_extra_config_hook()
    contracts = _contracts(args.contracts)
    if {c.source.name for c in contracts} != {SOURCE}:
        raise SystemExit(f"the benchmark reads the `{SOURCE}` source; pick contracts on it")
    work = args.keep or Path(tempfile.mkdtemp(prefix="fp-throughput-"))
    work.mkdir(parents=True, exist_ok=True)
    spec = SourceSpec.from_contracts(contracts)
    n = args.events
    report: dict[str, Any] = {"modes": {}}
    parameters = {"events": n, "contracts": args.contracts, "parallelism": args.parallelism,
                  "files_batch": args.files, "repeat": args.repeat, "modes": args.modes, "hours": args.hours,
                  "entities": args.entities, "profile": args.profile}
    try:
        one = work / "events_one" / SOURCE
        gen_s, generated = _timed(lambda: write_events(
            spec, one, n, files=1, seed=1, duration=timedelta(hours=args.hours), max_jitter=safe_jitter(contracts),
            entities=args.entities))
        size_mb = sum(p.stat().st_size for p in generated.files) / 1e6
        report["generate"] = {"seconds": gen_s, "events_per_s": n / gen_s, "megabytes": size_mb}
        print(f"generate     {n:,} events ({size_mb:,.0f} MB) in {gen_s:.1f}s = {n / gen_s:,.0f} events/s", flush=True)
        many = work / "events_many" / SOURCE
        many.mkdir(parents=True, exist_ok=True)
        if "batch" in args.modes:  # the same bytes cut at line boundaries into --files files
            _split_lines(generated.files[0], many, args.files)

        reference = None
        if args.modes[0] != "pandas":  # the reference rows, untimed
            reference = pandas_windows(list(generated.files), contracts)

        def record(mode: str, runs: list[dict[str, Any]]) -> None:
            median = {key: statistics.median(run[key] for run in runs) for key in runs[0]
                      if isinstance(runs[0][key], float | int)}
            median["events_per_s"] = n / median["seconds"]
            report["modes"][mode] = {**median, "runs": runs}
            detail = "  ".join(f"{k} {v:.1f}" for k, v in median.items() if k not in ("seconds", "events_per_s"))
            print(f"{mode:12s} {median['seconds']:7.1f}s  {median['events_per_s']:>10,.0f} events/s  {detail}  "
                  f"(median of {len(runs)})", flush=True)

        for mode in args.modes:
            runs = []
            for attempt in range(args.repeat):
                data = work / f"data_{mode}_{attempt}"
                settings = Settings(data_dir=data, parallelism=args.parallelism)
                if mode == "pandas":
                    seconds, frames = _timed(lambda: pandas_windows(list(generated.files), contracts))
                    reference = reference or frames
                    runs.append({"seconds": seconds, "rows": sum(len(f) for f in frames.values())})
                elif mode == "streaming":
                    seconds, summary = _timed(lambda s=settings: run_contracts(contracts, {SOURCE: one}, s))
                    runs.append({"seconds": seconds, "flink_s": summary.flink_seconds,
                                 "commit_s": summary.commit_seconds, **_accounting(summary),
                                 "same_as_pandas": check_run(reference, contracts, settings)})
                else:
                    seconds, summary = _timed(lambda s=settings: run_backfill(
                        contracts, {SOURCE: many}, s, start=generated.first_event - timedelta(days=1),
                        end=generated.last_event + timedelta(days=1)))
                    runs.append({"seconds": seconds, "flink_s": summary.flink_seconds,
                                 "commit_s": summary.commit_seconds, **_accounting(summary),
                                 "same_as_pandas": check_run(reference, contracts, settings)})
                shutil.rmtree(data, ignore_errors=True)
            record(mode, runs)
        if "pandas" in report["modes"]:
            for result in report["modes"].values():
                result["ratio_vs_pandas"] = report["modes"]["pandas"]["seconds"] / result["seconds"]
            print("ratio vs pandas: " + ", ".join(f"{mode} {r['ratio_vs_pandas']:.2f}x"
                                                  for mode, r in report["modes"].items()))
        if args.profile:
            tiny = work / "events_tiny" / SOURCE
            write_events(spec, tiny, 1, seed=1)
            profile = profile_jobs(contracts, one, work / "profile", args.parallelism, tiny)
            report["profile_seconds"] = profile
            for name, seconds in profile.items():
                print(f"  profile  {name:42s} {seconds:7.1f}s  {n / seconds:>10,.0f} lines/s", flush=True)
        report["peak_memory_mib"] = peak_memory_mib()
        print(f"peak memory: {report['peak_memory_mib']}")
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    _results.write(args.name, parameters, report)


def _accounting(summary: Any) -> dict[str, float]:
    """Dead letters of the run (generated events are all good, so any dead letter means lost throughput)."""
    dead = sum(sum(table.dead_letters.values()) for table in summary.tables)
    return {"dead_letters": float(dead), "balanced": float(summary.balanced)}


def _split_lines(source: Path, folder: Path, files: int) -> None:
    """Cut a JSON-lines file into ``files`` files at line boundaries (same lines, same order)."""
    data = source.read_bytes()
    bounds = [0]
    for index in range(1, files):
        cut = data.find(b"\n", len(data) * index // files)
        bounds.append(len(data) if cut < 0 else cut + 1)
    bounds.append(len(data))
    for index in range(files):
        (folder / f"{SOURCE}-{index:05d}.jsonl").write_bytes(data[bounds[index]: bounds[index + 1]])


if __name__ == "__main__":
    main()
