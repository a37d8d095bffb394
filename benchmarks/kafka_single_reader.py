"""Benchmark: does one Kafka reader (``scan.parallelism = 1``) become the bottleneck of a parallelism-2 job?

Kafka sources are read by one task so that lateness is classified behind the merged watermark (docs/sources.md,
"Parallelism and idle partitions"). The reader also evaluates the rowtime expression of the watermark (one JSON parse
per record on the parse-once path). Side by side in one run, on the same topic (three partitions, generated events):

* ``single_reader_stage`` the job as it runs now: one reader, the classification and local window aggregates at
  parallelism 1 chained to it, the global window aggregates at 2 (:mod:`pipelines.flink.single_reader`);
* ``single_reader`` the previous plan: one reader, a rebalance, classification and windows at parallelism 2 (the
  stream-graph step switched off for the run); exact except for the idle race docs/sources.md describes;
* ``reader_per_task`` the first plan: two readers, each chained to its own classification
  (``KAFKA_READER_PARALLELISM`` set to None for the run); loses late-classified records of a returning partition.

Each is a bounded :func:`pipelines.jobs.compute.run_contracts` at parallelism 2 with parse-once on, into Delta; every
run must be balanced (accepted + dead letters = records). Medians of ``--repeat`` runs, the modes' order rotated
every repetition.

    .venv/bin/python benchmarks/kafka_single_reader.py --events 60000 --repeat 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
import _results  # noqa: E402

SOURCE = "transactions"
#: mode -> (``KAFKA_READER_PARALLELISM``, whether the stage behind the reader is pinned to parallelism 1)
MODES = {"single_reader_stage": (1, True), "single_reader": (1, False), "reader_per_task": (None, False)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    _results.start()

    from pipelines.codegen import flink_sql
    from pipelines.config import Settings
    from pipelines.contracts.load import load_contract
    from pipelines.flink import job as flink_job
    from pipelines.jobs.compute import run_contracts
    from pipelines.sources.generator import SourceSpec, safe_jitter, write_events
    from pipelines.sources.kafka import create_topic, kafka_location, produce_files
    from pipelines.testing.kafka_broker import kafka_broker

    needs_stage = flink_job.needs_single_reader_stage
    contract = load_contract(ROOT / "contracts" / "user_txn_stats.yaml").contract
    runs: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="kafka-single-reader-") as tmp:
        root = Path(tmp)
        generated = write_events(SourceSpec.from_contracts([contract]), root / "events", args.events, seed=5,
                                 duration=timedelta(hours=6), max_jitter=safe_jitter([contract]), entities=500)
        with kafka_broker(root / "broker") as broker:
            create_topic(broker.bootstrap_servers, "tx", partitions=3)
            produced = produce_files(broker.bootstrap_servers, "tx", list(generated.files), partitions=3)
            for repetition in range(args.repeat):
                order = list(MODES)[repetition % len(MODES):] + list(MODES)[:repetition % len(MODES)]
                for mode in order:  # rotated, so that no mode is always the first (cold) job of the run
                    reader_parallelism, pinned = MODES[mode]
                    flink_sql.KAFKA_READER_PARALLELISM = reader_parallelism
                    flink_job.needs_single_reader_stage = needs_stage if pinned else (lambda *_: False)
                    settings = Settings(data_dir=root / f"{mode}-{repetition}", parallelism=2, parse_once="on",
                                        kafka_bootstrap_servers=broker.bootstrap_servers,
                                        kafka_group_id=f"{mode}-{repetition}", kafka_topics={SOURCE: "tx"})
                    started = time.perf_counter()
                    summary = run_contracts([contract], {SOURCE: kafka_location(settings, SOURCE, bounded=True)},
                                            settings)
                    wall = time.perf_counter() - started
                    (table,) = summary.tables
                    assert table.balanced and table.input_lines == produced, (mode, table)
                    runs.append({"mode": mode, "repetition": repetition, "flink_s": round(summary.flink_seconds, 2),
                                 "wall_s": round(wall, 2), "events_per_s": round(produced / summary.flink_seconds),
                                 "accepted": table.events_accepted, "dead_letters": dict(table.dead_letters)})
                    print(runs[-1], flush=True)
    flink_sql.KAFKA_READER_PARALLELISM = 1
    flink_job.needs_single_reader_stage = needs_stage
    medians = {mode: statistics.median(r["events_per_s"] for r in runs if r["mode"] == mode) for mode in MODES}
    ratios = {"stage_to_single_reader": round(medians["single_reader_stage"] / medians["single_reader"], 3),
              "stage_to_per_task": round(medians["single_reader_stage"] / medians["reader_per_task"], 3),
              "single_reader_to_per_task": round(medians["single_reader"] / medians["reader_per_task"], 3)}
    print(f"events/s (median, Flink job incl. start): {medians}; ratios {ratios}")
    _results.write("kafka_single_reader", {"events": args.events, "repeat": args.repeat, "partitions": 3,
                                           "parallelism": 2, "parse_once": "on", "contract": contract.name},
                   {"runs": runs, "median_events_per_s": medians, "ratios": ratios})


if __name__ == "__main__":
    main()
