"""The single-reader stage: which nodes of a stream graph run at parallelism 1, checked on a hand-made graph (no JVM)
and on the real stream graph of a Kafka job at parallelism 2 (a JVM, no job run, no broker)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.codegen.flink_sql import JobSql, OutputPaths, build_job_sql
from pipelines.config import PROJECT_ROOT
from pipelines.contracts.load import load_contract
from pipelines.flink.environment import FlinkOptions
from pipelines.flink.single_reader import (
    PlanNode,
    SingleReaderPlanError,
    needs_single_reader_stage,
    reader_nodes,
    single_reader_stage,
)
from pipelines.sources.location import FileSource, KafkaSource

#: The shape the planner gives a Kafka job at parallelism 2 (ids and names as in a real plan, shortened).
PLAN = [
    PlanNode(1, "Source: KafkaSource-default_catalog.default_database.transactions__source", 1, ((3, "REBALANCE"),)),
    PlanNode(3, "Calc[2]", 2, ((4, "FORWARD"), (13, "FORWARD"))),
    PlanNode(4, "Calc[3]", 2, ((7, "FORWARD"),)),
    PlanNode(7, "LocalWindowAggregate[6]", 2, ((9, "HASH"),)),
    PlanNode(9, "GlobalWindowAggregate[8]", 2, ((10, "FORWARD"),)),
    PlanNode(10, "StreamingFileWriter", 2, ((17, "REBALANCE"),)),
    PlanNode(17, "end: Writer", 1, ()),
    PlanNode(13, "Calc[11]", 2, ((14, "REBALANCE"),)),
    PlanNode(14, "StreamingFileWriter", 1, ((18, "FORWARD"),)),
    PlanNode(18, "end: Writer", 1, ()),
]


def _job(location: KafkaSource | FileSource, contract: str = "user_txn_stats") -> JobSql:
    loaded = load_contract(PROJECT_ROOT / "contracts" / f"{contract}.yaml").contract
    outputs = {loaded.table_name: OutputPaths("file:///run/features", "file:///run/dead_letters")}
    return build_job_sql([loaded], {loaded.source.name: location}, outputs)


def test_the_stage_runs_from_the_reader_to_the_keyed_exchange_and_takes_the_dead_letter_branch() -> None:
    stage = single_reader_stage(PLAN, reader_nodes(PLAN, ["transactions__source"]))
    assert stage == {1, 3, 4, 7, 13, 14, 18}  # not the global windows (behind HASH) nor their sink


def test_a_missing_or_parallel_reader_is_refused() -> None:
    with pytest.raises(SingleReaderPlanError, match="clicks__source"):
        reader_nodes(PLAN, ["clicks__source"])
    parallel = [PlanNode(1, PLAN[0].name, 2, PLAN[0].outputs), *PLAN[1:]]
    with pytest.raises(SingleReaderPlanError, match="p=2"):
        reader_nodes(parallel, ["transactions__source"])


def test_only_kafka_jobs_streaming_at_parallelism_above_1_need_the_stage(tmp_path: Path) -> None:
    kafka = _job(KafkaSource("transactions", "127.0.0.1:9092", "g"))
    files = _job(FileSource("file:///events"))
    assert kafka.single_reader_tables == ("transactions__source",) and files.single_reader_tables == ()
    options = FlinkOptions(checkpoint_dir=tmp_path, parallelism=2)
    assert needs_single_reader_stage(kafka, options)
    assert not needs_single_reader_stage(files, options)
    assert not needs_single_reader_stage(kafka, FlinkOptions(checkpoint_dir=tmp_path, parallelism=1))
    assert not needs_single_reader_stage(kafka, FlinkOptions(checkpoint_dir=tmp_path, runtime_mode="batch"))


@pytest.mark.e2e
def test_the_stream_graph_of_a_kafka_job_at_parallelism_2_has_one_pre_window_task(tmp_path: Path) -> None:
    """The real planner's graph (sliding windows, parse-once on if its jar builds), translated but not run."""
    from pipelines.flink.job import create_job_environment
    from pipelines.flink.parse_once import prepare_parse_once
    from pipelines.flink.single_reader import plan_nodes, single_reader_stream_graph
    from pipelines.jvm.jars import FLINK_KAFKA, fetch_jars

    job, options = prepare_parse_once(_job(KafkaSource("transactions", "127.0.0.1:9", "g")),
                                      FlinkOptions(checkpoint_dir=tmp_path / "ckpt", parallelism=2,
                                                   jars=fetch_jars(FLINK_KAFKA)))
    env = create_job_environment(job, options)
    for statement in job.ddl:
        env.execute_sql(statement)
    statements = env.create_statement_set()
    for insert in job.inserts:
        statements.add_insert_sql(insert)
    plan = {node.id: node for node in plan_nodes(single_reader_stream_graph(env, statements, job.single_reader_tables))}
    shown = "\n".join(node.describe() for node in plan.values())

    (reader,) = [node for node in plan.values() if node.name.startswith("Source: KafkaSource")]
    hashes = [(node, target) for node in plan.values() for target, partitioner in node.outputs if partitioner == "HASH"]
    assert len(hashes) == 1, shown
    (local, global_window), = [(node, plan[target]) for node, target in hashes]
    assert local.name.startswith("LocalWindowAggregate") and global_window.name.startswith("GlobalWindowAggregate")
    # everything from the reader to the keyed exchange, dead-letter branch included: parallelism 1, forward edges
    stage = single_reader_stage(list(plan.values()), [reader.id])
    assert {plan[node].name.split("[")[0] for node in stage} >= {"Calc", "LocalWindowAggregate",
                                                                   "StreamingFileWriter"}, shown
    assert all(plan[node].parallelism == 1 for node in stage), shown
    assert all(partitioner in ("FORWARD", "HASH") for node in stage for _, partitioner in plan[node].outputs), shown
    # the global windows and the feature sink keep the job's parallelism
    assert global_window.parallelism == 2, shown
    (feature_writer,) = [plan[target] for target, _ in global_window.outputs]
    while not feature_writer.name.startswith("StreamingFileWriter"):
        (feature_writer,) = [plan[target] for target, _ in feature_writer.outputs]
    assert feature_writer.parallelism == 2, shown
