"""Benchmark: the platform end to end against stock Flink SQL, side by side in one run, on the same events.

Per scenario (a set of contracts reading one source), on the same generated JSON-lines events:

* ``platform``  the product: JSON files → classification (dead letters) → windows → CSV part files → committed Delta
                (:func:`pipelines.jobs.compute.run_contracts`, streaming, one file; :func:`pipelines.jobs.backfill.
                run_backfill`, batch, the same bytes cut into ``--files`` files). ``parse_once=on`` unless asked.
* ``stock``     what stock Flink SQL does with the same events: a filesystem source with the ``json`` format (one
                parse per line, bad lines dropped: ``json.ignore-parse-errors``), the same rowtime and watermark, the
                same window aggregations (the platform's own generated ``INSERT`` over the typed columns), no
                classification, a ``blackhole`` sink; the same parallelism and Flink settings, one Flink job.
* ``pandas``    a single-process pandas computation of the same windows (:mod:`streaming_throughput`); the
                platform's committed Delta rows must equal its rows, else the benchmark fails.

Both Flink figures are wall seconds from building the environment to the end of the job (the platform's also
includes its Delta commits). ``ratio`` = stock seconds / platform seconds (1.0 = as fast as stock; the target is
≥ 0.8). Each mode runs ``--repeat`` times, interleaved (platform, stock, platform, ...), and medians are reported.

``--breakdown`` adds the stage breakdown, each stage its own job with ``blackhole`` sinks, for the plain SQL
(``before``: ``parse_once=off``) and the parse-once path (``after``): job start (1 line), read the lines and the
rowtime, + classification, + windows, the generated job with its CSV sinks. ``--variants`` times the platform's
streaming job under alternative Flink settings (window work: mini-batch, two-phase aggregation, object reuse,
chaining, the state backend, network buffers, task managers) or with one generated aggregate replaced (``sql:``, to
measure what it costs), each paired with a default run (after one untimed warm-up job; the side that runs first
alternates); every run's rows are compared with pandas, so a faster variant that changes the result is recorded as
such. ``--profile`` records one platform streaming run and one stock run with Java's Flight Recorder and sums the
samples by operator and method (:mod:`_jfr`).

    .venv/bin/python benchmarks/vs_stock_flink.py --scenarios transactions clicks --events 10000000
    .venv/bin/python benchmarks/vs_stock_flink.py --scenarios sliding --events 2000000

Results: a table on stdout and ``benchmarks/results/<--name>.json`` (default ``vs_stock_flink``; every run, medians,
load, machine), written after every mode so a run cut short still leaves its figures.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

#: The sliding-window contract of the issue: a 10-minute window sliding every 2 minutes, six features.
SLIDING_CONTRACT = """
name: sliding_benchmark
version: 1.0.0
owner: perf@example.com
description: Ten-minute activity of a user, refreshed every two minutes (benchmark shape).
entity: {name: user, join_keys: [user_id]}
source:
  name: transactions
  event_time: event_ts
  allowed_lateness: 30s
  schema:
    txn_id: {type: string, required: true}
    user_id: string
    merchant_id: {type: string, required: true}
    amount: {type: double, required: true}
    country: string
    channel: string
    event_ts: timestamp
features:
  - {name: txn_count_10m, aggregation: count, window: {size: 10m, slide: 2m}, type: int64, description: n}
  - {name: amount_sum_10m, aggregation: sum, column: amount, window: {size: 10m, slide: 2m}, type: double,
     description: s}
  - {name: amount_avg_10m, aggregation: avg, column: amount, window: {size: 10m, slide: 2m}, type: double,
     description: a}
  - {name: amount_max_10m, aggregation: max, column: amount, window: {size: 10m, slide: 2m}, type: double,
     description: m}
  - {name: distinct_merchants_10m, aggregation: count_distinct, column: merchant_id, window: {size: 10m, slide: 2m},
     type: int64, description: d}
  - {name: last_country_10m, aggregation: last, column: country, window: {size: 10m, slide: 2m}, type: string,
     description: l}
sla: {freshness: 5m}
"""

#: scenario → (contract names or the inline sliding contract, source, entities, event-time span in hours)
SCENARIOS: dict[str, tuple[tuple[str, ...], str, int, float]] = {
    "transactions": (("merchant_risk_profile", "user_txn_stats"), "transactions", 20_000, 24.0),
    "clicks": (("session_clickstream",), "clicks", 20_000, 24.0),
    "sliding": (("sliding_benchmark",), "transactions", 400, 24.0),
}

#: Window-work variants (``--variants``): Flink keys added to the default configuration, or (``sql:`` labels) the
#: generated aggregate of one aggregation replaced, to measure what that aggregation costs.
VARIANTS: dict[str, dict[str, str]] = {
    "object reuse": {"pipeline.object-reuse": "true"},
    # the same setting measured from the other side (docs/performance.md; it was briefly a default)
    "no object reuse (before)": {"pipeline.object-reuse": "false"},
    "mini-batch 1s/5000": {"table.exec.mini-batch.enabled": "true",
                           "table.exec.mini-batch.allow-latency": "1s", "table.exec.mini-batch.size": "5000"},
    "mini-batch 5s/50000": {"table.exec.mini-batch.enabled": "true",
                            "table.exec.mini-batch.allow-latency": "5s", "table.exec.mini-batch.size": "50000"},
    "mini-batch 1s/5000 one-phase": {"table.exec.mini-batch.enabled": "true",
                                     "table.exec.mini-batch.allow-latency": "1s",
                                     "table.exec.mini-batch.size": "5000",
                                     "table.optimizer.agg-phase-strategy": "ONE_PHASE"},
    "two-phase (local-global)": {"table.optimizer.agg-phase-strategy": "TWO_PHASE"},
    "one-phase aggregation": {"table.optimizer.agg-phase-strategy": "ONE_PHASE"},
    "split distinct": {"table.optimizer.distinct-agg.split.enabled": "true"},
    "no chaining": {"pipeline.operator-chaining.enabled": "false"},
    "rocksdb state": {"state.backend.type": "rocksdb"},
    "network buffers 4/64kb": {"taskmanager.memory.segment-size": "64kb",
                               "taskmanager.network.memory.buffers-per-channel": "4"},
    "buffer timeout 1s": {"execution.buffer-timeout.interval": "1000ms"},
    "two task managers": {"minicluster.number-of-taskmanagers": "2", "taskmanager.numberOfTaskSlots": "1"},
    "before: event time parsed in SQL": {},
    "sql: last as MAX(column) (cost only)": {},
    "sql: count_distinct as COUNT (cost only)": {},
    "sql: accepted_in_step without FILTER (cost only)": {},
}

#: The ``sql:`` variants: aggregation → the aggregate expression used instead (results differ: cost only).
SQL_VARIANTS: dict[str, tuple[str, str]] = {
    "sql: last as MAX(column) (cost only)": ("last", "MAX({column})"),
    "sql: count_distinct as COUNT (cost only)": ("count_distinct", "COUNT({column})"),
    # ``COUNT(*) FILTER (WHERE _rowtime >= window_end - step)`` reads window_end in an aggregate argument, which keeps
    # the planner from slicing the hopping window (each event is copied into its size/step windows instead)
    "sql: accepted_in_step without FILTER (cost only)": ("accepted_in_step", "COUNT(*)"),
}

_EXTRA_CONFIG: dict[str, str] = {}
#: The results so far: written after every mode, so a run cut short (a loaded machine) still leaves its figures.
_REPORT: dict[str, Any] = {"scenarios": {}}


def _install_extra_config_hook() -> None:
    """Let variants add Flink keys without touching the library (wraps flink_configuration, as in
    streaming_throughput)."""
    import pipelines.flink.environment as environment

    original = environment.flink_configuration

    def configured(options: Any) -> dict[str, str]:
        return {**original(options), **_EXTRA_CONFIG}

    environment.flink_configuration = configured


def load_scenario(name: str) -> list[Any]:
    from pipelines.contracts.load import load_contract

    names = SCENARIOS[name][0]
    if names == ("sliding_benchmark",):
        folder = Path(tempfile.mkdtemp(prefix="fp-sliding-contract-"))
        (folder / "sliding_benchmark.yaml").write_text(SLIDING_CONTRACT)
        return [load_contract(folder / "sliding_benchmark.yaml").contract]
    return [load_contract(ROOT / "contracts" / f"{n}.yaml").contract for n in names]


# ------------------------------------------------------------------------------------------------------ stock flink


def stock_job(contracts: list[Any], events: Path, work: Path) -> Any:
    """Stock Flink SQL: the ``json`` format, the platform's own rowtime, watermark and window INSERTs, blackhole."""
    from pipelines.codegen.flink_sql import (
        FLINK_TYPES,
        ROWTIME,
        JobSql,
        _parse_timestamp,
        feature_insert,
        feature_sink_columns,
        interval,
        quote_identifier,
    )

    source = contracts[0].source
    columns: dict[str, str] = {}
    for contract in contracts:
        for name, spec in contract.source.columns.items():
            columns[name] = "STRING" if spec.type == "timestamp" else FLINK_TYPES[spec.type]
    lateness = max(c.source.allowed_lateness for c in contracts)
    body = ",\n".join(f"  {quote_identifier(n)} {t}" for n, t in columns.items())
    rowtime = _parse_timestamp(quote_identifier(source.event_time))
    ddl = [(f"CREATE TEMPORARY TABLE `stock_source` (\n{body},\n"
            f"  {ROWTIME} AS COALESCE({rowtime}, TIMESTAMP '1970-01-01 00:00:00'),\n"
            f"  WATERMARK FOR {ROWTIME} AS {ROWTIME} - {interval(lateness)}\n"
            f") WITH ('connector' = 'filesystem', 'path' = '{events.as_uri()}', 'format' = 'json', "
            f"'json.ignore-parse-errors' = 'true')")]
    inserts = []
    for contract in contracts:
        table = contract.table_name
        used = [*contract.entity.join_keys, *(f.column for f in contract.features if f.column)]
        names = ", ".join(dict.fromkeys(quote_identifier(n) for n in used))
        ddl.append(f"CREATE TEMPORARY VIEW `{table}__good` AS SELECT {names}, {ROWTIME} FROM `stock_source`")
        sink = ",\n".join(f"  {quote_identifier(n)} {t}" for n, t in feature_sink_columns(contract))
        ddl.append(f"CREATE TEMPORARY TABLE `{table}__features` (\n{sink}\n) WITH ('connector' = 'blackhole')")
        inserts.append(feature_insert(contract))
    return JobSql(tuple(ddl), tuple(inserts))


def run_stock(contracts: list[Any], events: Path, work: Path, parallelism: int, mode: str) -> float:
    from pipelines.flink.environment import FlinkOptions
    from pipelines.flink.job import run_job

    job = stock_job(contracts, events, work)
    options = FlinkOptions(checkpoint_dir=work / "ckpt", parallelism=parallelism, idle_timeout=None,
                           runtime_mode="batch" if mode == "batch" else "streaming", parse_once="off")
    started = time.perf_counter()
    run_job(job, options)
    return time.perf_counter() - started


# -------------------------------------------------------------------------------------------------------- breakdown


def breakdown(contracts: list[Any], events: Path, tiny: Path, work: Path, parallelism: int,
              parse_once: str) -> dict[str, float]:
    """Seconds of the cumulative stages (module docstring), each its own job, with ``parse_once`` as given."""
    from pipelines.codegen.flink_sql import JobSql, OutputPaths, build_job_sql
    from pipelines.flink.environment import FlinkOptions
    from pipelines.flink.job import run_job

    source = contracts[0].source.name

    def job_for(folder: Path, tag: str) -> JobSql:
        outputs = {c.table_name: OutputPaths((work / tag / c.table_name / "f").as_uri(),
                                             (work / tag / c.table_name / "d").as_uri()) for c in contracts}
        return build_job_sql(contracts, {source: folder.as_uri()}, outputs)

    def run(job: JobSql, tag: str) -> float:
        options = FlinkOptions(checkpoint_dir=work / tag / "ckpt", parallelism=parallelism, idle_timeout=None,
                               parse_once=parse_once)
        started = time.perf_counter()
        run_job(job, options)
        return time.perf_counter() - started

    full = job_for(events, "full")
    is_sink = re.compile(r"^CREATE TEMPORARY TABLE `\w+__(features|dead_letters)`")
    blackholes = tuple(s[: s.index(") WITH (")] + ") WITH ('connector' = 'blackhole')" if is_sink.match(s) else s
                       for s in full.ddl)
    raw_sink = "CREATE TEMPORARY TABLE `bh_raw` (l STRING, t TIMESTAMP(3)) WITH ('connector' = 'blackhole')"
    reason_sink = "CREATE TEMPORARY TABLE `bh_reason` (r STRING) WITH ('connector' = 'blackhole')"
    return {
        "job start (1 line, full job)": run(job_for(tiny, "tiny"), "tiny"),
        "read lines + rowtime": run(JobSql((*full.ddl, raw_sink), (
            f"INSERT INTO `bh_raw` SELECT _line, _rowtime FROM `{source}__source`",)), "raw"),
        "+ classification": run(JobSql((*full.ddl, reason_sink), tuple(
            f"INSERT INTO `bh_reason` SELECT _error_reason FROM `{c.table_name}__classified`" for c in contracts)),
            "classify"),
        "+ windows (blackhole sinks)": run(JobSql(blackholes, full.inserts), "windows"),
        "generated job (CSV sinks)": run(full, "csv"),
    }


# ------------------------------------------------------------------------------------------------------------- main


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _save(args: argparse.Namespace) -> None:
    import _results

    _REPORT["load_note"] = (f"shared 2-core machine, other engineers' tests running; load average "
                            f"{os.getloadavg()[0]:.1f} when written")
    _results.write(args.name, vars(args), _REPORT)


def run_scenario(name: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from streaming_throughput import _split_lines, check_run, pandas_windows

    from pipelines.config import Settings
    from pipelines.jobs.backfill import run_backfill
    from pipelines.jobs.compute import run_contracts
    from pipelines.sources.generator import SourceSpec, safe_jitter, write_events

    contracts = load_scenario(name)
    _, source, entities, hours = SCENARIOS[name]
    n = args.events
    one = work / name / "events_one" / source
    generated = write_events(SourceSpec.from_contracts(contracts), one, n, files=1, seed=1,
                             duration=timedelta(hours=hours), max_jitter=safe_jitter(contracts), entities=entities)
    many = work / name / "events_many" / source
    many.mkdir(parents=True, exist_ok=True)
    _split_lines(generated.files[0], many, args.files)
    print(f"[{name}] {n:,} events, contracts {[c.table_name for c in contracts]}", flush=True)
    pandas_s, reference = _timed(lambda: pandas_windows(list(generated.files), contracts))
    result: dict[str, Any] = {"contracts": [c.table_name for c in contracts], "events": n,
                              "pandas": {"seconds": pandas_s, "events_per_s": n / pandas_s,
                                         "rows": sum(len(f) for f in reference.values())}}
    _REPORT["scenarios"][name] = result
    print(f"[{name}] pandas {pandas_s:.1f}s = {n / pandas_s:,.0f} events/s", flush=True)
    for mode in args.modes:
        runs: dict[str, list[dict[str, Any]]] = {"platform": [], "stock": []}
        for attempt in range(args.repeat):
            settings = Settings(data_dir=work / name / f"data_{mode}_{attempt}", parallelism=args.parallelism,
                                parse_once=args.parse_once)
            if mode == "streaming":
                seconds, cpu, summary = _cpu_timed(lambda s=settings: run_contracts(contracts, {source: one}, s))
            else:
                seconds, cpu, summary = _cpu_timed(lambda s=settings: run_backfill(
                    contracts, {source: many}, s, start=generated.first_event - timedelta(days=1),
                    end=generated.last_event + timedelta(days=1)))
            balanced = summary.balanced
            if not balanced:
                raise SystemExit(f"[{name}] {mode}: accepted + dead letters != input lines")
            same = check_run(reference, contracts, settings)
            runs["platform"].append({"seconds": seconds, "flink_s": summary.flink_seconds,
                                     "commit_s": summary.commit_seconds, "balanced": balanced, "same_as_pandas": same,
                                     "cpu_s": cpu, "load": round(os.getloadavg()[0], 2)})
            shutil.rmtree(settings.data_dir, ignore_errors=True)
            stock_events = one if mode == "streaming" else many
            stock_s, stock_cpu, _ = _cpu_timed(lambda a=attempt, m=mode, e=stock_events: run_stock(
                contracts, e, work / name / f"stock_{a}", args.parallelism, m))
            runs["stock"].append({"seconds": stock_s, "cpu_s": stock_cpu, "load": round(os.getloadavg()[0], 2)})
            print(f"[{name}] {mode} run {attempt + 1}: platform {seconds:.1f}s ({sum(cpu.values()):.1f} CPU s), "
                  f"stock {stock_s:.1f}s ({sum(stock_cpu.values()):.1f} CPU s)", flush=True)
        platform_s = _median([r["seconds"] for r in runs["platform"]])
        stock_s = _median([r["seconds"] for r in runs["stock"]])
        platform_cpu = _median([sum(r["cpu_s"].values()) for r in runs["platform"]])
        stock_cpu = _median([sum(r["cpu_s"].values()) for r in runs["stock"]])
        result[mode] = {
            "platform": {"seconds": platform_s, "events_per_s": n / platform_s, "runs": runs["platform"]},
            "stock": {"seconds": stock_s, "events_per_s": n / stock_s, "runs": runs["stock"]},
            "ratio": stock_s / platform_s,
            # the same ratio over CPU seconds (JVM + Python): the work each side did, less moved by the load
            "cpu_ratio": stock_cpu / platform_cpu,
            "platform_vs_pandas": pandas_s / platform_s,
        }
        print(f"[{name}] {mode}: platform {n / platform_s:,.0f} events/s, stock {n / stock_s:,.0f} events/s, "
              f"ratio {stock_s / platform_s:.2f}, CPU-seconds ratio {stock_cpu / platform_cpu:.2f} (medians of "
              f"{args.repeat}); pandas {n / pandas_s:,.0f}", flush=True)
        _save(args)
    if args.breakdown:
        tiny = work / name / "events_tiny" / source
        write_events(SourceSpec.from_contracts(contracts), tiny, 1, seed=1)
        result["breakdown_seconds"] = {
            label: breakdown(contracts, one, tiny, work / name / f"breakdown_{label}", args.parallelism, parse_once)
            for label, parse_once in (("before (plain SQL)", "off"), ("after (parse once)", "on"))}
        for label, stages in result["breakdown_seconds"].items():
            for stage, seconds in stages.items():
                print(f"[{name}] breakdown {label:20s} {stage:30s} {seconds:6.1f}s", flush=True)
        _save(args)
    if args.profile:
        result["profile"] = profile(contracts, one, work / name / "profile", args, source)
        _save(args)
    if args.variants:
        result["variants_seconds"] = variants(contracts, one, work / name / "variants", args, reference)
        _save(args)
    return result


def variants(contracts: list[Any], one: Path, work: Path, args: argparse.Namespace,
             reference: dict[str, Any]) -> dict[str, Any]:
    """Platform streaming seconds per window-work variant, each paired with a default run (the first side
    alternates); every run's committed rows are compared with pandas (``same_as_pandas``), so a faster variant that
    changes results shows."""
    from streaming_throughput import check_run

    from pipelines.config import Settings
    from pipelines.jobs.compute import run_contracts

    source = contracts[0].source.name
    out: dict[str, Any] = {}
    # The first job of the process also starts the JVM and compiles its hot code: a small untimed run first, so
    # that cost falls on neither side of the first pair (it used to fall on its default run).
    from pipelines.sources.generator import SourceSpec, write_events

    warm = work / "warm_events" / source
    write_events(SourceSpec.from_contracts(contracts), warm, 20_000, seed=3)
    run_contracts(contracts, {source: warm}, Settings(data_dir=work / "warm", parallelism=args.parallelism,
                                                      parse_once=args.parse_once))
    shutil.rmtree(work / "warm", ignore_errors=True)
    chosen = [v for v in VARIANTS if not args.only_variants or v in args.only_variants]
    for label in chosen:
        extra = VARIANTS[label]
        pairs = []
        for attempt in range(args.variant_repeat):
            pair: dict[str, Any] = {"load": round(os.getloadavg()[0], 2)}
            # alternate which side runs first (ABBA), so a drift in the machine's load favours neither side
            order = (("default", {}), ("variant", extra))
            for which, config in order if attempt % 2 == 0 else order[::-1]:
                _EXTRA_CONFIG.clear()
                _EXTRA_CONFIG.update(config)
                settings = Settings(data_dir=work / f"{which}_{attempt}", parallelism=args.parallelism,
                                    parse_once=args.parse_once)
                restore = _sql_variant(label) if which == "variant" else None
                try:
                    pair[which], summary = _timed(lambda s=settings: run_contracts(contracts, {source: one}, s))
                    try:
                        check_run(reference, contracts, settings)
                        pair[f"{which}_same_as_pandas"] = bool(summary.balanced)
                    except Exception as error:
                        pair[f"{which}_same_as_pandas"] = False
                        pair[f"{which}_difference"] = str(error).splitlines()[0][:200]
                except Exception as error:  # a variant Flink refuses is a result too
                    pair[which] = None
                    pair["error"] = str(error).splitlines()[0][:300]
                finally:
                    _EXTRA_CONFIG.clear()
                    if restore is not None:
                        restore()
                shutil.rmtree(settings.data_dir, ignore_errors=True)
            pairs.append(pair)
            print(f"  variant {label:40s} pair {attempt + 1}: {pair}", flush=True)
        ratios = [p["default"] / p["variant"] for p in pairs if p.get("variant") and p.get("default")]
        out[label] = {"config": extra, "sql": SQL_VARIANTS.get(label), "pairs": pairs,
                      "speedup_median": _median(ratios) if ratios else None,
                      "same_results": all(p.get("variant_same_as_pandas") for p in pairs)}
        print(f"  variant {label:40s} speed-up {out[label]['speedup_median']}", flush=True)
        _REPORT["variants_partial"] = out
        _save(args)
    _REPORT.pop("variants_partial", None)
    return out


def profile(contracts: list[Any], one: Path, work: Path, args: argparse.Namespace, source: str) -> dict[str, Any]:
    """A JVM profile (Flight Recorder, ``_jfr``) of one platform streaming run and one stock run on the same events,
    and where the Python process spent the platform run (its CPU seconds, the Delta commits)."""
    import _jfr
    import psutil

    from pipelines.config import Settings
    from pipelines.jobs.compute import run_contracts

    work.mkdir(parents=True, exist_ok=True)
    if _jfr.gateway_jvm() is None:  # start the JVM (and load the classes) outside the recordings
        tiny = work / "tiny" / source
        from pipelines.sources.generator import SourceSpec, write_events

        write_events(SourceSpec.from_contracts(contracts), tiny, 1, seed=1)
        run_stock(contracts, tiny, work / "warm", args.parallelism, "streaming")
    settings = Settings(data_dir=work / "data", parallelism=args.parallelism, parse_once=args.parse_once)
    me = psutil.Process()
    cpu_before = sum(me.cpu_times()[:2])
    started = time.perf_counter()
    summary, platform_file = _jfr.recorded("platform", work / "platform.jfr",
                                           lambda: run_contracts(contracts, {source: one}, settings))
    platform_s = time.perf_counter() - started
    python_cpu_s = sum(me.cpu_times()[:2]) - cpu_before
    stock_s, stock_file = _jfr.recorded("stock", work / "stock.jfr", lambda: run_stock(
        contracts, one, work / "stock", args.parallelism, "streaming"))
    out = {
        "platform": {"seconds": platform_s, "flink_s": summary.flink_seconds, "commit_s": summary.commit_seconds,
                     "python_cpu_s": python_cpu_s, "jfr": _jfr.summarise(platform_file)},
        "stock": {"seconds": stock_s, "jfr": _jfr.summarise(stock_file)},
        "load_average": list(os.getloadavg()),
    }
    for side in ("platform", "stock"):
        print(f"[profile] {side} {out[side]['seconds']:.1f}s, {out[side]['jfr']['samples']} samples", flush=True)
        for row in out[side]["jfr"]["areas"]:
            print(f"    {row['share']:6.1%}  {row['name']}", flush=True)
    shutil.rmtree(settings.data_dir, ignore_errors=True)
    return out


def _sql_variant(label: str) -> Any:
    """Swap in the generated aggregate of a ``sql:`` variant, or the code before a change for a ``before:`` one;
    returns how to undo it (None when neither)."""
    if label == "before: event time parsed in SQL":  # the parse-once rewrite without FP_EVENT_TIME (same rows)
        import pipelines.codegen.parse_once as parse_once

        original_parse = parse_once.iso8601_to_utc_sql
        parse_once.iso8601_to_utc_sql = lambda raw: "\0 never in a statement"

        def restore_parse() -> None:
            parse_once.iso8601_to_utc_sql = original_parse

        return restore_parse
    if label not in SQL_VARIANTS:
        return None
    import pipelines.codegen.flink_sql as flink_sql

    aggregation, template = SQL_VARIANTS[label]
    if aggregation == "accepted_in_step":
        original_step = flink_sql.accepted_in_step_expression
        flink_sql.accepted_in_step_expression = lambda contract: template

        def restore_step() -> None:
            flink_sql.accepted_in_step_expression = original_step

        return restore_step
    original = flink_sql.feature_expression

    def replaced(feature: Any, contract: Any) -> str:
        if feature.aggregation != aggregation:
            return original(feature, contract)
        column = flink_sql.quote_identifier(feature.column)
        return f"CAST({template.format(column=column)} AS {flink_sql.FLINK_TYPES[feature.type]})"

    flink_sql.feature_expression = replaced

    def restore() -> None:
        flink_sql.feature_expression = original

    return restore


def _timed(fn: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def _cpu_seconds() -> dict[str, float]:
    """CPU seconds used so far by this process (Python: the Delta commits, the run's bookkeeping) and by its Java
    child (PyFlink's gateway, which runs the mini-cluster: every Flink task of both sides)."""
    import _jfr
    import psutil

    jvm = _jfr.gateway_jvm()
    try:
        jvm_s = sum(psutil.Process(jvm).cpu_times()[:2]) if jvm is not None else 0.0
    except psutil.Error:
        jvm_s = 0.0
    return {"jvm": jvm_s, "python": sum(psutil.Process().cpu_times()[:2])}


def _cpu_timed(fn: Any) -> tuple[float, dict[str, float], Any]:
    """Wall seconds, CPU seconds (JVM, Python) and result of ``fn``: on a shared machine the CPU a run used moves
    far less with the load than its wall time (it still grows some: caches, memory bandwidth, a JIT with fewer
    cores), so the benchmark reports both ratios."""
    before = _cpu_seconds()
    seconds, result = _timed(fn)
    after = _cpu_seconds()
    return seconds, {k: round(after[k] - before[k], 2) for k in after}, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", nargs="+", default=["transactions", "clicks", "sliding"],
                        choices=sorted(SCENARIOS))
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--files", type=int, default=8, help="files for the batch run")
    parser.add_argument("--parallelism", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--modes", nargs="*", default=["streaming", "batch"], choices=["streaming", "batch"])
    parser.add_argument("--parse-once", default="on", choices=["on", "off"])
    parser.add_argument("--breakdown", action="store_true")
    parser.add_argument("--variants", action="store_true")
    parser.add_argument("--profile", action="store_true", help="JFR profile of one platform and one stock run")
    parser.add_argument("--variant-repeat", type=int, default=1)
    parser.add_argument("--only-variants", nargs="*", default=[], help="run only these variants (labels)")
    parser.add_argument("--name", default="vs_stock_flink", help="results file name")
    args = parser.parse_args()
    import _results

    from pipelines.resources import peak_memory_mib

    _results.start()
    _install_extra_config_hook()
    work = Path(tempfile.mkdtemp(prefix="fp-vs-stock-"))
    try:
        for name in args.scenarios:
            run_scenario(name, args, work)
        _REPORT["peak_memory_mib"] = peak_memory_mib()
        print(f"peak memory: {_REPORT['peak_memory_mib']}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    _save(args)


if __name__ == "__main__":
    main()
