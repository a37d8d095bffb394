"""Behind a single-reader source, the job runs at parallelism 1 up to the first keyed exchange.

Why: lateness is classified with ``CURRENT_WATERMARK`` in the classifying Calc, and a record the classifier finds
on time must still be on time when it reaches its window operator. A Kafka topic is read by one task
(:data:`pipelines.codegen.flink_sql.KAFKA_READER_PARALLELISM`), which emits one merged watermark. With the
classification at the job's parallelism behind a rebalance, every window subtask has one input channel per
classifier, and the window operator's watermark is the minimum over the channels that are *active*. When the whole
topic goes idle (``table.exec.source.idle-timeout``) every channel turns idle; when a burst comes, each channel turns
active at its own moment, so the window operator can take the burst's (high) watermark from one channel while the
other is still idle, and then drop that channel's records, classified on time against the older watermark, without
a dead letter (measured: 38 of 988 events lost in one of five runs, docs/sources.md).

The fix: every operator between the reader and the first keyed (``HASH``) exchange — the classifying Calc, the
window table function and the local window aggregate, and the dead-letter branch — runs at parallelism 1, chained
to the reader. Each global window subtask then has exactly one input channel, whose watermarks come in order with
its records, and the local aggregate flushes a record's partial aggregate before forwarding any watermark that
closes the record's slice; so a record classified on time still finds its windows open, idle or not. The global
window aggregates and the feature sinks keep the job's parallelism.

Flink SQL has no per-operator parallelism, so this is done on the job's stream graph after the planner translated
it and before the job graph is built (the same steps :class:`TableEnvironment` takes internally: attach the statement
set to a ``StreamExecutionEnvironment``, configure it from the table config, generate the stream graph, execute it):
:func:`pin_single_reader_stage` sets the parallelism and turns the reader's rebalance into a forward edge, so the
stage chains into the reader's task. Only streaming jobs at parallelism > 1 that read such a source take this path
(:func:`needs_single_reader_stage`); every other job is submitted as a statement set, as before.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipelines.codegen.flink_sql import JobSql
from pipelines.errors import PlatformError, Terminal
from pipelines.flink.environment import FlinkOptions

if TYPE_CHECKING:
    from pyflink.common import JobClient
    from pyflink.table import StatementSet, StreamTableEnvironment

log = logging.getLogger(__name__)

#: The partitioner of a keyed exchange, as a stream edge names it (``KeyGroupStreamPartitioner.toString()``).
KEYED_EXCHANGE = "HASH"
_FORWARD = "org.apache.flink.streaming.runtime.partitioner.ForwardPartitioner"
_REBALANCE = "org.apache.flink.streaming.runtime.partitioner.RebalancePartitioner"
#: Partitioners that only spread records over the next operator's subtasks: between two tasks of parallelism 1 they
#: are the same single channel as a forward edge, which lets the operators chain.
_SPREADING = frozenset({"FORWARD", "REBALANCE", "RESCALE"})


class SingleReaderPlanError(PlatformError, Terminal):
    """The stream graph does not have the shape the single-reader stage needs (a reader missing or not single)."""


@dataclass(frozen=True)
class PlanNode:
    """One node of a stream graph: its operator, its parallelism and its outputs as (target id, partitioner)."""

    id: int
    name: str
    parallelism: int
    outputs: tuple[tuple[int, str], ...]

    def describe(self) -> str:
        edges = ", ".join(f"{partitioner} -> {target}" for target, partitioner in self.outputs)
        return f"{self.id:>3} p={self.parallelism} {self.name}" + (f"  [{edges}]" if edges else "")


def needs_single_reader_stage(job: JobSql, options: FlinkOptions) -> bool:
    """True when ``job`` must run through :func:`pin_single_reader_stage`: streaming, parallelism > 1, and a source
    read by one task. Batch runs have no watermark (no ``late_event``), parallelism 1 has one channel everywhere."""
    return bool(job.single_reader_tables) and options.runtime_mode == "streaming" and options.parallelism > 1


def single_reader_stage(nodes: Sequence[PlanNode], readers: Iterable[int]) -> set[int]:
    """The ids of ``readers`` and of every node reachable from them without crossing a keyed exchange."""
    outputs: Mapping[int, tuple[tuple[int, str], ...]] = {node.id: node.outputs for node in nodes}
    stage: set[int] = set()
    pending = list(readers)
    while pending:
        node = pending.pop()
        if node in stage:
            continue
        stage.add(node)
        pending += [target for target, partitioner in outputs[node] if partitioner != KEYED_EXCHANGE]
    return stage


def plan_nodes(j_graph: Any) -> list[PlanNode]:
    """The nodes of a Java ``StreamGraph``, from the sources on (py4j)."""
    return [PlanNode(int(node.getId()), str(node.getOperatorName()), int(node.getParallelism()),
                     tuple((int(edge.getTargetId()), str(edge.getPartitioner().toString()))
                           for edge in node.getOutEdges()))
            for node in j_graph.getStreamNodesSortedTopologicallyFromSources()]


def reader_nodes(nodes: Sequence[PlanNode], tables: Iterable[str]) -> list[int]:
    """The source node of every table in ``tables``; raises when one is missing or read by more than one task."""
    readers = []
    for table in tables:
        found = [node for node in nodes
                 if node.name.startswith("Source:") and node.name.endswith(f".{table}")]
        if len(found) != 1 or found[0].parallelism != 1:
            shown = "; ".join(node.describe() for node in found) or "none"
            raise SingleReaderPlanError(f"expected one source node at parallelism 1 reading `{table}`, found {shown}",
                                        hint="the planner's naming or the Kafka table's 'scan.parallelism' changed")
        readers.append(found[0].id)
    return readers


def pin_single_reader_stage(j_graph: Any, tables: Iterable[str]) -> list[PlanNode]:
    """Run the stage behind the readers of ``tables`` at parallelism 1, chained to them; return the new plan.

    Parallelism 1 on every node of :func:`single_reader_stage`; a spreading edge (rebalance, rescale) between two
    such nodes becomes a forward edge (the same single channel, and the operators chain); a forward edge between
    nodes of different parallelism (a node with inputs from both sides) becomes a rebalance.
    """
    from pyflink.java_gateway import get_gateway

    jvm = get_gateway().jvm
    nodes = plan_nodes(j_graph)
    stage = single_reader_stage(nodes, reader_nodes(nodes, tables))
    for node_id in stage:
        j_graph.getStreamNode(node_id).setParallelism(1)
    for node_id in stage:
        j_node = j_graph.getStreamNode(node_id)
        for edge in [*j_node.getInEdges(), *j_node.getOutEdges()]:
            partitioner = str(edge.getPartitioner().toString())
            both_single = (edge.getSourceId() in stage) and (edge.getTargetId() in stage)
            if both_single and partitioner in _SPREADING and partitioner != "FORWARD":
                edge.setPartitioner(_new(jvm, _FORWARD))
            elif not both_single and partitioner == "FORWARD":
                edge.setPartitioner(_new(jvm, _REBALANCE))
    return plan_nodes(j_graph)


def _new(jvm: Any, class_name: str) -> Any:
    package, _, name = class_name.rpartition(".")
    holder = jvm
    for part in package.split("."):
        holder = getattr(holder, part)
    return getattr(holder, name)()


@dataclass(frozen=True)
class GraphJobResult:
    """A job submitted as a stream graph, shaped like the ``TableResult`` a statement set gives (the two methods the
    callers use), so :func:`pipelines.flink.job.submit_job` returns either."""

    client: JobClient

    def get_job_client(self) -> JobClient:
        return self.client

    def wait(self) -> None:
        """Block until the job ends; raises (py4j) with Flink's error when it failed."""
        self.client._j_job_client.getJobExecutionResult().get()


def single_reader_stream_graph(env: StreamTableEnvironment, statements: StatementSet,
                               tables: Iterable[str]) -> Any:
    """The Java ``StreamGraph`` of ``statements`` with the single-reader stage pinned (see the module docstring).

    Takes the steps ``TableEnvironmentImpl.executeInternal`` and ``DefaultExecutor.createPipeline`` take: translate
    the statements (attached to the environment's ``StreamExecutionEnvironment``), configure that environment from
    the table config (checkpoints, restore path, REST port, target, job name), generate the stream graph.
    """
    statements.attach_as_datastream()
    j_env = env._j_tenv.execEnv()
    j_env.configure(env.get_config()._j_table_config.getConfiguration())
    j_graph = j_env.getStreamGraph()
    plan = pin_single_reader_stage(j_graph, tables)
    log.info("stream graph with the single-reader stage:\n%s", "\n".join(node.describe() for node in plan))
    return j_graph


def execute_with_single_reader_stage(env: StreamTableEnvironment, statements: StatementSet,
                                     tables: Iterable[str]) -> GraphJobResult:
    """Submit ``statements`` with the single-reader stage pinned; don't wait."""
    from pyflink.common import JobClient

    j_graph = single_reader_stream_graph(env, statements, tables)
    return GraphJobResult(JobClient(env._j_tenv.execEnv().executeAsync(j_graph)))
