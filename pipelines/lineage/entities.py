"""Contract -> the create requests of the entities OpenMetadata should hold, built with the SDK's generated models.

Every request is an instance of OpenMetadata's own ``Create*Request`` class (``extra='forbid'``), so a misspelt or
unknown field fails here, not on the server. Which entity stands for what, and why (details in ``docs/lineage.md``):

* **source**: a Kafka topic in the messaging service (its message schema = the columns every contract reading it
  declares), or, for JSON-lines folders, a container in a storage service (its data model = the same columns).
* **Flink job**: a pipeline in a Flink pipeline service; its tasks are the generated SQL (classification, window
  aggregation, dead letters), the SQL the job runs for this contract.
* **Delta table**: a table in a Delta Lake database service (service -> database -> schema -> table) with every
  column, its type and description; ``External``, at the table's path.
* **Feast feature view**: a table of type ``View`` in a ``feast`` database service (project -> ``feature_views``). A
  feature view is a typed, named projection of the Delta table that models read: a view is what OpenMetadata models
  best (columns with types and descriptions, column-level lineage table -> table, tags, owners, a data contract).
  OpenMetadata's ML-model entity would describe a model that *uses* features, and its features carry no column types.

Contract metadata: every contract entity carries the tag ``FeatureContract.<name>`` and the resolved owner; the
version is in each display name; SLA, version and owner are also in the native data contract
(:mod:`pipelines.lineage.data_contract`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pipelines.codegen.flink_sql import JobSql
from pipelines.contracts.durations import format_duration
from pipelines.contracts.model import Contract
from pipelines.layout import INGESTED_AT, WINDOW_END, WINDOW_START
from pipelines.lineage import names
from pipelines.lineage.sdk import skip_sdk_package_init
from pipelines.sources.location import FileSource, KafkaSource

if TYPE_CHECKING:
    from metadata.generated.schema.entity.data.table import Column
    from metadata.generated.schema.type.entityReferenceList import EntityReferenceList
    from metadata.generated.schema.type.tagLabel import TagLabel

#: Contract column/feature types -> OpenMetadata column data types (tables, containers).
TABLE_TYPES: dict[str, str] = {
    "string": "STRING", "int32": "INT", "int64": "BIGINT", "float": "FLOAT", "double": "DOUBLE",
    "boolean": "BOOLEAN", "timestamp": "TIMESTAMP",
}
#: Contract column types -> OpenMetadata topic field types (a topic schema has its own type list).
TOPIC_TYPES: dict[str, str] = {
    "string": "STRING", "int32": "INT", "int64": "LONG", "float": "FLOAT", "double": "DOUBLE",
    "boolean": "BOOLEAN", "timestamp": "TIMESTAMP",
}
#: OpenMetadata requires a partition count on a topic; the platform does not know it (Kafka's own connector in
#: OpenMetadata fills the real one). Said in the topic's description.
UNKNOWN_PARTITIONS = 1


# ------------------------------------------------------------------------------------------------------ contract bits


def contract_tags(contract: Contract) -> list[TagLabel]:
    """The tag every entity of ``contract`` carries: ``FeatureContract.<contract name>``."""
    skip_sdk_package_init()
    from metadata.generated.schema.type.tagLabel import LabelType, State, TagLabel, TagSource

    return [TagLabel(tagFQN=names.tag_fqn(contract.name), source=TagSource.Classification,
                     labelType=LabelType.Automated, state=State.Confirmed)]


def display_name(contract: Contract) -> str:
    """``user_txn_stats 1.2.0``: the contract and its exact version, shown wherever the entity is listed."""
    return f"{contract.name} {contract.version}"


def contract_line(contract: Contract) -> str:
    """One Markdown line naming the contract, its version, owner and compatibility (in every description)."""
    return (f"Generated from feature contract `{contract.name}` version {contract.version} "
            f"(owner {contract.owner}, compatibility {contract.compatibility}"
            f"{', deprecated' if contract.deprecated else ''}).")


def _source_columns(contracts: Sequence[Contract]) -> list[tuple[str, str, str | None]]:
    """(name, type, description) of every column any of ``contracts`` declares for their shared source, in the order
    first declared (contracts sorted by name, so the result does not depend on file order)."""
    seen: dict[str, tuple[str, str, str | None]] = {}
    for contract in sorted(contracts, key=lambda c: c.table_name):
        for name, column in contract.source.columns.items():
            if name not in seen or (seen[name][2] is None and column.description):
                seen[name] = (name, column.type, column.description)
    return list(seen.values())


def _source_description(contracts: Sequence[Contract]) -> str:
    first = min(contracts, key=lambda c: c.table_name)
    readers = ", ".join(sorted(c.table_name for c in contracts))
    text = first.source.description or f"Events of source `{first.source.name}`."
    return f"{text}\n\nJSON events read by the feature platform's Flink jobs for: {readers}."


# ----------------------------------------------------------------------------------------------------------- sources


def messaging_service() -> Any:
    skip_sdk_package_init()
    from metadata.generated.schema.api.services.createMessagingService import CreateMessagingServiceRequest
    from metadata.generated.schema.entity.services.messagingService import MessagingServiceType

    return CreateMessagingServiceRequest(name=names.MESSAGING_SERVICE, serviceType=MessagingServiceType.Kafka,
                                         description="Kafka topics the feature platform reads events from.")


def topic(contracts: Sequence[Contract], location: KafkaSource) -> Any:
    """The topic of one source, its message schema the union of the columns its contracts declare."""
    skip_sdk_package_init()
    from metadata.generated.schema.api.data.createTopic import CreateTopicRequest
    from metadata.generated.schema.type.schema import DataTypeTopic, FieldModel, SchemaType
    from metadata.generated.schema.type.schema import Topic as MessageSchema

    fields = [FieldModel(name=name, dataType=DataTypeTopic(TOPIC_TYPES[kind]), description=description)
              for name, kind, description in _source_columns(contracts)]
    # retentionSize: the SDK's own default (-1, Kafka's "no size limit"), given as the float the field declares (the
    # generated default is the string '-1', which would not read back as the same request).
    return CreateTopicRequest(
        name=location.topic, service=names.MESSAGING_SERVICE, partitions=UNKNOWN_PARTITIONS, retentionSize=-1.0,
        description=_source_description(contracts) + " Partition count not known to the platform.",
        messageSchema=MessageSchema(schemaType=SchemaType.JSON, schemaFields=fields))


def storage_service() -> Any:
    skip_sdk_package_init()
    from metadata.generated.schema.api.services.createStorageService import CreateStorageServiceRequest
    from metadata.generated.schema.entity.services.storageService import StorageServiceType

    return CreateStorageServiceRequest(name=names.STORAGE_SERVICE, serviceType=StorageServiceType.CustomStorage,
                                       description="Folders of JSON-lines event files the feature platform reads.")


def container(contracts: Sequence[Contract], location: FileSource) -> Any:
    """The folder of one source's JSON-lines files, its data model the columns its contracts declare."""
    skip_sdk_package_init()
    from metadata.generated.schema.api.data.createContainer import CreateContainerRequest
    from metadata.generated.schema.entity.data.container import ContainerDataModel, FileFormat

    columns = [_column(name, kind, description) for name, kind, description in _source_columns(contracts)]
    source_name = contracts[0].source.name
    return CreateContainerRequest(
        name=source_name, service=names.STORAGE_SERVICE, description=_source_description(contracts),
        prefix=location.uri, fullPath=location.uri, fileFormats=[FileFormat.json],
        dataModel=ContainerDataModel(isPartitioned=False, columns=columns))


# ---------------------------------------------------------------------------------------------------------- pipeline


def pipeline_service() -> Any:
    skip_sdk_package_init()
    from metadata.generated.schema.api.services.createPipelineService import CreatePipelineServiceRequest
    from metadata.generated.schema.entity.services.pipelineService import PipelineServiceType

    return CreatePipelineServiceRequest(name=names.PIPELINE_SERVICE, serviceType=PipelineServiceType.Flink,
                                        description="Flink SQL jobs generated from feature contracts.")


def pipeline_tasks(job_sql: JobSql) -> list[Any]:
    """The contract's part of the generated job as three tasks: read and classify, then windows and dead letters.

    ``job_sql`` is the job of this one contract (:func:`pipelines.codegen.flink_sql.build_job_sql` over it alone):
    five statements of DDL (source table, classified view, good view, feature sink, dead-letter sink) and two
    INSERTs (features, dead letters).
    """
    skip_sdk_package_init()
    from metadata.generated.schema.entity.data.pipeline import Task

    if len(job_sql.ddl) != 5 or len(job_sql.inserts) != 2:
        raise ValueError(f"expected the job of one contract (5 DDL, 2 INSERT), got {len(job_sql.ddl)} DDL and "
                         f"{len(job_sql.inserts)} INSERT")
    source, classified, good, feature_sink, dead_letter_sink = job_sql.ddl
    features, dead_letters = job_sql.inserts

    def sql(*statements: str) -> str:
        return "".join(f"{statement};\n\n" for statement in statements).rstrip("\n") + "\n"

    return [
        Task(name="read_and_classify", displayName="Read and classify events", taskType="Flink SQL",
             description="Reads raw JSON lines, parses them, sets the event-time watermark and classifies each "
                         "event as good or as a dead letter with its reason.",
             taskSQL=sql(source, classified, good), downstreamTasks=["window_features", "dead_letters"]),
        Task(name="window_features", displayName="Window the features", taskType="Flink SQL",
             description="Aggregates the good events per entity and window into one row of features per step.",
             taskSQL=sql(feature_sink, features)),
        Task(name="dead_letters", displayName="Write dead letters", taskType="Flink SQL",
             description="Writes every refused event with its reason and raw line to the dead-letter table.",
             taskSQL=sql(dead_letter_sink, dead_letters)),
    ]


def pipeline(contract: Contract, job_sql: JobSql, owners: EntityReferenceList | None) -> Any:
    skip_sdk_package_init()
    from metadata.generated.schema.api.data.createPipeline import CreatePipelineRequest

    return CreatePipelineRequest(
        name=contract.table_name, displayName=display_name(contract), service=names.PIPELINE_SERVICE,
        description=f"Flink SQL job computing `{contract.table_name}` from source `{contract.source.name}`: "
                    f"{contract.description}\n\n{contract_line(contract)}",
        tasks=pipeline_tasks(job_sql), tags=contract_tags(contract), owners=owners)


# ------------------------------------------------------------------------------------------------------------ tables


def _column(name: str, kind: str, description: str | None) -> Column:
    skip_sdk_package_init()
    from metadata.generated.schema.entity.data.table import Column, DataType

    return Column(name=name, dataType=DataType(TABLE_TYPES[kind]), description=description or None)


def feature_description(contract: Contract, feature_name: str) -> str:
    feature = next(f for f in contract.features if f.name == feature_name)
    unit = f" Unit: {feature.unit}." if feature.unit else ""
    deprecated = " Deprecated." if feature.deprecated else ""
    return f"{feature.description}{unit}{deprecated}"


def delta_columns(contract: Contract) -> list[Column]:
    """The Delta table's columns, in its order (:func:`pipelines.delta.schema.delta_schema` is the same layout)."""
    columns = contract.source.columns
    keys = [_column(key, columns[key].type, columns[key].description or f"Join key of entity "
                                                                          f"`{contract.entity.name}`.")
            for key in contract.entity.join_keys]
    windows = [_column(WINDOW_START, "timestamp", "Start of the longest window of the row (UTC)."),
               _column(WINDOW_END, "timestamp", "End of the window: the values hold as of this instant (UTC); "
                                                "Feast's event timestamp.")]
    features = [_column(f.name, f.type, feature_description(contract, f.name)) for f in contract.features]
    ingested = _column(INGESTED_AT, "timestamp", "When the row was committed to Delta (Feast's created timestamp).")
    return [*keys, *windows, *features, ingested]


def database_service(name: str, kind: str, description: str) -> Any:
    skip_sdk_package_init()
    from metadata.generated.schema.api.services.createDatabaseService import CreateDatabaseServiceRequest
    from metadata.generated.schema.entity.services.databaseService import DatabaseServiceType

    return CreateDatabaseServiceRequest(name=name, serviceType=DatabaseServiceType(kind), description=description)


def database(service: str, name: str, description: str) -> Any:
    skip_sdk_package_init()
    from metadata.generated.schema.api.data.createDatabase import CreateDatabaseRequest

    return CreateDatabaseRequest(name=name, service=service, description=description)


def schema(service: str, database_name: str, name: str, description: str) -> Any:
    skip_sdk_package_init()
    from metadata.generated.schema.api.data.createDatabaseSchema import CreateDatabaseSchemaRequest

    return CreateDatabaseSchemaRequest(name=name, database=names.fqn(service, database_name), description=description)


def delta_table(contract: Contract, location_uri: str, owners: EntityReferenceList | None) -> Any:
    skip_sdk_package_init()
    from metadata.generated.schema.api.data.createTable import CreateTableRequest
    from metadata.generated.schema.entity.data.table import FileFormat, TableType

    return CreateTableRequest(
        name=contract.table_name, displayName=display_name(contract), tableType=TableType.External,
        description=f"{contract.description}\n\nOne row per entity `{contract.entity.name}` and window end "
                    f"(every {format_duration(contract.step)}); a Delta table per contract major version.\n\n"
                    f"{contract_line(contract)}",
        columns=delta_columns(contract), databaseSchema=names.fqn(names.DELTA_SERVICE, names.DELTA_DATABASE,
                                                                  names.DELTA_SCHEMA),
        locationPath=location_uri, fileFormat=FileFormat.parquet, tags=contract_tags(contract), owners=owners)


def feature_view_columns(contract: Contract) -> list[Column]:
    """The feature view's fields: the join keys, then the features (as Feast's view schema lists them)."""
    columns = contract.source.columns
    keys = [_column(key, columns[key].type, columns[key].description or f"Join key of entity "
                                                                          f"`{contract.entity.name}`.")
            for key in contract.entity.join_keys]
    return [*keys, *(_column(f.name, f.type, feature_description(contract, f.name)) for f in contract.features)]


def feature_view(contract: Contract, project: str, owners: EntityReferenceList | None) -> Any:
    skip_sdk_package_init()
    from metadata.generated.schema.api.data.createTable import CreateTableRequest
    from metadata.generated.schema.entity.data.table import TableType

    online = (f"served online with a TTL of {format_duration(contract.serving.ttl)}" if contract.serving.online
              else "offline only")
    return CreateTableRequest(
        name=contract.table_name, displayName=display_name(contract), tableType=TableType.View,
        description=f"Feast feature view `{contract.table_name}` (and feature service of the same name) in project "
                    f"`{project}`, over the Delta table `{contract.table_name}`; {online}.\n\n"
                    f"{contract.description}\n\n{contract_line(contract)}",
        columns=feature_view_columns(contract),
        databaseSchema=names.fqn(names.FEAST_SERVICE, project, names.FEAST_SCHEMA),
        tags=contract_tags(contract), owners=owners)


# -------------------------------------------------------------------------------------------------------------- tags


def classification() -> Any:
    skip_sdk_package_init()
    from metadata.generated.schema.api.classification.createClassification import CreateClassificationRequest

    return CreateClassificationRequest(
        name=names.CLASSIFICATION, mutuallyExclusive=False,
        description="Entities generated from a feature contract of the feature platform: one tag per contract.")


def tag(contract: Contract) -> Any:
    skip_sdk_package_init()
    from metadata.generated.schema.api.classification.createTag import CreateTagRequest

    return CreateTagRequest(name=contract.name, classification=names.CLASSIFICATION,
                            description=f"Generated from feature contract `{contract.name}`: {contract.description}")
