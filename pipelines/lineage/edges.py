"""The lineage edges of one contract, with column-level lineage taken from the contract.

Two edges per contract, as OpenMetadata's own pipeline connectors (Kafka Connect, Flink) draw a job between two data
assets: the job is *on* the edge (``lineageDetails.pipeline``), not a node of its own, because OpenMetadata keeps
column lineage only between assets with columns (tables, topics, containers, ...), never through a pipeline.

* **source -> Delta table**, through the Flink pipeline (``PipelineLineage``): each feature column comes from its
  input column, the function naming the aggregation and window (``sum(amount) over HOP(size 1h, slide 5m)``); the
  join keys come from the same source columns (the grouping); ``window_start``/``window_end`` from the event-time
  column. A ``count`` without a column counts events, so it comes from the event-time column.
  ``ingested_at`` is set at commit time and has no source column.
* **Delta table -> Feast feature view** (``ViewLineage``): each key and feature column is read as is, newest value per
  entity within the view's TTL.

References to entities carry their FQN and a placeholder id (:data:`~pipelines.lineage.sdk.UNRESOLVED_ID`): the
server needs ids, which exist only once the entities do; the publisher fills them in.
"""

from __future__ import annotations

from typing import Any

from pipelines.contracts.durations import format_duration
from pipelines.contracts.model import Contract, Feature
from pipelines.layout import WINDOW_END, WINDOW_START
from pipelines.lineage.sdk import UNRESOLVED_ID, skip_sdk_package_init


def reference(entity_type: str, fqn: str) -> Any:
    """A reference to an entity by type and FQN; its id is filled in by the publisher."""
    skip_sdk_package_init()
    from metadata.generated.schema.type.entityReference import EntityReference

    return EntityReference(id=UNRESOLVED_ID, type=entity_type, fullyQualifiedName=fqn)


def window_text(contract: Contract, feature: Feature | None = None) -> str:
    """The window of a feature (or the contract's row windows) as Flink names it: ``TUMBLE(1h)``,
    ``HOP(size 1h, slide 5m)``."""
    size = feature.window.size if feature is not None else contract.max_window
    step = contract.step
    if size == step:
        return f"TUMBLE({format_duration(size)})"
    return f"HOP(size {format_duration(size)}, slide {format_duration(step)})"


def feature_function(contract: Contract, feature: Feature) -> str:
    """``count_distinct(merchant_id) over HOP(size 1h, slide 5m)``: the aggregation and window of one feature,
    plus the contract's event filter when it has one."""
    argument = feature.column or "*"
    text = f"{feature.aggregation}({argument}) over {window_text(contract, feature)} on {contract.source.event_time}"
    if contract.source.filter:
        text += f" where {contract.source.filter}"
    return text


def feature_inputs(contract: Contract, feature: Feature) -> list[str]:
    """The source columns a feature is computed from (``count`` without a column counts events by event time)."""
    return [feature.column] if feature.column is not None else [contract.source.event_time]


def source_column_lineage(contract: Contract, source_fqn: str, table_fqn: str) -> list[Any]:
    """Column lineage source -> Delta table: join keys, window bounds and every feature."""
    skip_sdk_package_init()
    from metadata.generated.schema.type.entityLineage import ColumnLineage

    def column(parent: str, name: str) -> str:
        return f"{parent}.{name}"

    event_time = contract.source.event_time
    lineage = [ColumnLineage(fromColumns=[column(source_fqn, key)], toColumn=column(table_fqn, key),
                             function=f"group by {key}")
               for key in contract.entity.join_keys]
    lineage += [ColumnLineage(fromColumns=[column(source_fqn, event_time)], toColumn=column(table_fqn, bound),
                              function=f"{bound} of {window_text(contract)} on {event_time}")
                for bound in (WINDOW_START, WINDOW_END)]
    lineage += [ColumnLineage(fromColumns=[column(source_fqn, name) for name in feature_inputs(contract, feature)],
                              toColumn=column(table_fqn, feature.name), function=feature_function(contract, feature))
                for feature in contract.features]
    return lineage


def view_column_lineage(contract: Contract, table_fqn: str, view_fqn: str) -> list[Any]:
    """Column lineage Delta table -> feature view: every key and feature, newest value per entity within the TTL."""
    skip_sdk_package_init()
    from metadata.generated.schema.type.entityLineage import ColumnLineage

    ttl = format_duration(contract.serving.ttl)
    keys = [ColumnLineage(fromColumns=[f"{table_fqn}.{key}"], toColumn=f"{view_fqn}.{key}", function="entity key")
            for key in contract.entity.join_keys]
    features = [ColumnLineage(fromColumns=[f"{table_fqn}.{f.name}"], toColumn=f"{view_fqn}.{f.name}",
                              function=f"newest {f.name} by {WINDOW_END} within TTL {ttl}")
                for f in contract.features]
    return keys + features


def source_to_table_edge(contract: Contract, source: Any, pipeline: Any, table: Any, insert_sql: str) -> Any:
    """The edge source -> Delta table through the contract's Flink pipeline, with column lineage and the SQL."""
    skip_sdk_package_init()
    from metadata.generated.schema.api.lineage.addLineage import AddLineageRequest
    from metadata.generated.schema.type.entityLineage import EntitiesEdge, LineageDetails, Source

    details = LineageDetails(
        pipeline=pipeline, source=Source.PipelineLineage, sqlQuery=insert_sql,
        columnsLineage=source_column_lineage(contract, source.fullyQualifiedName, table.fullyQualifiedName),
        description=f"Flink job `{contract.table_name}`: windowed aggregation of source `{contract.source.name}` "
                    f"(contract {contract.name} {contract.version}).")
    return AddLineageRequest(edge=EntitiesEdge(fromEntity=source, toEntity=table, lineageDetails=details))


def table_to_view_edge(contract: Contract, table: Any, view: Any) -> Any:
    """The edge Delta table -> Feast feature view, with column lineage."""
    skip_sdk_package_init()
    from metadata.generated.schema.api.lineage.addLineage import AddLineageRequest
    from metadata.generated.schema.type.entityLineage import EntitiesEdge, LineageDetails, Source

    details = LineageDetails(
        source=Source.ViewLineage,
        columnsLineage=view_column_lineage(contract, table.fullyQualifiedName, view.fullyQualifiedName),
        description=f"Feast feature view `{contract.table_name}` reads the Delta table (offline) and its newest "
                    f"values per entity are loaded into the online store.")
    return AddLineageRequest(edge=EntitiesEdge(fromEntity=table, toEntity=view, lineageDetails=details))
