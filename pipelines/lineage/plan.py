"""Everything one publish sends, in order: the create requests and edges of a set of contracts, built ahead of time.

A :class:`LineagePlan` is pure data (OpenMetadata's generated request models), the same for a dry run and a publish,
so ``--dry-run`` shows exactly what would be sent. Requests come in dependency **levels**: a request only refers to
entities of lower levels (a topic to its service, a table to its schema, an edge to both of its ends), so the
requests of one level can be sent in any order, and a level starts only when the one before it has finished:

0. the ``FeatureContract`` classification and the services (messaging or storage, pipeline, Delta, Feast);
1. one tag per contract, the databases, and the source topics or containers;
2. one pipeline per contract (it carries its tag), the schemas;
3. the Delta table and the Feast feature view of each contract;
4. the two lineage edges and the data contract of each contract (they need the ids of level 1-3 entities).

Entities shared by several contracts (services, a source read by two contracts) appear once. A source's topic or
container is built from every contract that reads it, even when only some are published (``--contract``), so
publishing one contract never shrinks the shared source's schema.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines.codegen.flink_sql import OutputPaths, build_job_sql
from pipelines.contracts.model import Contract
from pipelines.lineage import data_contract, edges, entities, names
from pipelines.sources.location import FileSource, KafkaSource, SourceLocation

#: Where the Flink job writes, shown in the pipeline's SQL: one folder per run, so the run id is a placeholder and
#: the published SQL does not change from run to run.
RUN_PLACEHOLDER = "RUN_ID"


@dataclass(frozen=True)
class PlannedRequest:
    """One call: the request, the entity it creates or updates (type + FQN; an edge's is ``from -> to``), its level,
    and the contract it belongs to (``None``: shared)."""

    level: int
    entity_type: str
    fqn: str
    request: Any
    contract: str | None = None


@dataclass(frozen=True)
class LineagePlan:
    """The requests of one publish (see the module docstring) and each contract's owner as the contract says it."""

    requests: tuple[PlannedRequest, ...]
    owners: Mapping[str, str] = field(default_factory=dict)

    def levels(self) -> list[list[PlannedRequest]]:
        """The requests grouped by level, lowest first."""
        top = max((r.level for r in self.requests), default=-1)
        return [[r for r in self.requests if r.level == level] for level in range(top + 1)]

    def of_type(self, entity_type: str) -> list[PlannedRequest]:
        return [r for r in self.requests if r.entity_type == entity_type]

    @property
    def contracts(self) -> list[str]:
        return sorted({r.contract for r in self.requests if r.contract is not None})


def source_entity(location: SourceLocation, source_name: str) -> tuple[str, str]:
    """(entity type, FQN) of a source: a topic for Kafka, a container for files."""
    if isinstance(location, KafkaSource):
        return "topic", names.topic_fqn(location.topic)
    return "container", names.container_fqn(source_name)


def job_sql_of(contract: Contract, location: SourceLocation, flink_dir: Path):
    """The SQL the Flink job runs for ``contract`` alone, its output folders under ``runs/RUN_ID``."""
    base = flink_dir / "runs" / RUN_PLACEHOLDER / contract.table_name
    outputs = {contract.table_name: OutputPaths(features=(base / "features").as_uri(),
                                                dead_letters=(base / "dead_letters").as_uri())}
    return build_job_sql([contract], {contract.source.name: location}, outputs)


class _Builder:
    """Collects planned requests, keeping one per entity (a shared entity must come out the same every time)."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, str], PlannedRequest] = {}

    def add(self, level: int, entity_type: str, fqn: str, request: Any, contract: str | None = None) -> None:
        key = (entity_type, fqn)
        planned = PlannedRequest(level, entity_type, fqn, request, contract)
        earlier = self.requests.get(key)
        if earlier is not None and earlier.request != request:
            raise ValueError(f"two different requests for {entity_type} {fqn}")
        self.requests.setdefault(key, planned)


def build_plan(contracts: Sequence[Contract], *, sources: Mapping[str, SourceLocation], project: str,
               delta_uris: Mapping[str, str], flink_dir: Path, all_contracts: Sequence[Contract] | None = None,
               owners: Mapping[str, Any] | None = None) -> LineagePlan:
    """The plan publishing ``contracts``.

    ``sources`` maps each source name to where its events come from (a Kafka topic or a files location);
    ``project`` is the Feast project; ``delta_uris`` maps a contract's table name to its Delta table's location;
    ``flink_dir`` is where the job writes (shown in its SQL); ``all_contracts`` are every contract (default:
    ``contracts``), so a shared source's schema covers all its readers; ``owners`` maps a table name to the
    owner reference the server resolved (an ``EntityReferenceList``; absent: no owner on the entities).
    """
    everyone = list(all_contracts) if all_contracts is not None else list(contracts)
    owners = owners or {}
    plan = _Builder()
    plan.add(0, "classification", names.CLASSIFICATION, entities.classification())
    kinds = {source_entity(sources[c.source.name], c.source.name)[0] for c in contracts}
    if "topic" in kinds:
        plan.add(0, "messagingService", names.MESSAGING_SERVICE, entities.messaging_service())
    if "container" in kinds:
        plan.add(0, "storageService", names.STORAGE_SERVICE, entities.storage_service())
    plan.add(0, "pipelineService", names.PIPELINE_SERVICE, entities.pipeline_service())
    plan.add(0, "databaseService", names.DELTA_SERVICE, entities.database_service(
        names.DELTA_SERVICE, "DeltaLake", "Delta Lake tables written by the feature platform's commit stage."))
    plan.add(0, "databaseService", names.FEAST_SERVICE, entities.database_service(
        names.FEAST_SERVICE, "CustomDatabase", "Feast feature views built from feature contracts."))
    plan.add(1, "database", names.fqn(names.DELTA_SERVICE, names.DELTA_DATABASE), entities.database(
        names.DELTA_SERVICE, names.DELTA_DATABASE, "The feature platform's Delta tables."))
    plan.add(1, "database", names.fqn(names.FEAST_SERVICE, project), entities.database(
        names.FEAST_SERVICE, project, f"Feast project `{project}`."))
    plan.add(2, "databaseSchema", names.fqn(names.DELTA_SERVICE, names.DELTA_DATABASE, names.DELTA_SCHEMA),
             entities.schema(names.DELTA_SERVICE, names.DELTA_DATABASE, names.DELTA_SCHEMA,
                             "One Delta table per feature contract major version."))
    plan.add(2, "databaseSchema", names.fqn(names.FEAST_SERVICE, project, names.FEAST_SCHEMA),
             entities.schema(names.FEAST_SERVICE, project, names.FEAST_SCHEMA,
                             "One feature view per feature contract major version."))

    for contract in contracts:
        table = contract.table_name
        location = sources[contract.source.name]
        readers = [c for c in everyone if c.source.name == contract.source.name] or [contract]
        source_type, source_fqn = source_entity(location, contract.source.name)
        source_request = (entities.topic(readers, location) if isinstance(location, KafkaSource)
                          else entities.container(readers, location))
        plan.add(1, source_type, source_fqn, source_request)
        plan.add(1, "tag", names.tag_fqn(contract.name), entities.tag(contract), table)

        job_sql = job_sql_of(contract, location, flink_dir)
        owner = owners.get(table)
        plan.add(2, "pipeline", names.pipeline_fqn(table), entities.pipeline(contract, job_sql, owner), table)
        plan.add(3, "table", names.delta_table_fqn(table), entities.delta_table(contract, delta_uris[table], owner),
                 table)
        plan.add(3, "table", names.feature_view_fqn(project, table),
                 entities.feature_view(contract, project, owner), table)

        source_ref = edges.reference(source_type, source_fqn)
        pipeline_ref = edges.reference("pipeline", names.pipeline_fqn(table))
        delta_ref = edges.reference("table", names.delta_table_fqn(table))
        view_ref = edges.reference("table", names.feature_view_fqn(project, table))
        feature_insert = job_sql.inserts[0]
        plan.add(4, "lineage", f"{source_fqn} -> {names.delta_table_fqn(table)}",
                 edges.source_to_table_edge(contract, source_ref, pipeline_ref, delta_ref, feature_insert), table)
        plan.add(4, "lineage", f"{names.delta_table_fqn(table)} -> {names.feature_view_fqn(project, table)}",
                 edges.table_to_view_edge(contract, delta_ref, view_ref), table)
        plan.add(4, "dataContract", f"{names.delta_table_fqn(table)}.{table}",
                 data_contract.data_contract(contract, delta_ref, owner), table)
    ordered = sorted(plan.requests.values(), key=lambda r: r.level)
    return LineagePlan(tuple(ordered), {c.table_name: c.owner for c in contracts})


def default_sources(contracts: Sequence[Contract], events: str, *, events_dir: Path,
                    kafka_topic: Any, bootstrap_servers: str, group_id: str) -> dict[str, SourceLocation]:
    """Where each source's events come from when the caller does not say: its Kafka topic (``events="kafka"``, what
    ``stream`` reads) or its folder under the data folder's ``events/`` (``events="files"``, what ``run`` writes)."""
    if events not in ("kafka", "files"):
        raise ValueError(f"events must be 'kafka' or 'files', got {events!r}")
    locations: dict[str, SourceLocation] = {}
    for source in sorted({c.source.name for c in contracts}):
        if events == "kafka":
            locations[source] = KafkaSource(topic=kafka_topic(source), bootstrap_servers=bootstrap_servers,
                                            group_id=group_id)
        else:
            locations[source] = FileSource.local(events_dir / source)
    return locations


@dataclass(frozen=True)
class LineageScope:
    """What a publish covers and where things live: everything :func:`build_plan` needs except the owners (which
    only the server can resolve)."""

    contracts: tuple[Contract, ...]
    all_contracts: tuple[Contract, ...]
    sources: Mapping[str, SourceLocation]
    project: str
    delta_uris: Mapping[str, str]
    flink_dir: Path

    def plan(self, owners: Mapping[str, Any] | None = None) -> LineagePlan:
        return build_plan(self.contracts, sources=self.sources, project=self.project, delta_uris=self.delta_uris,
                          flink_dir=self.flink_dir, all_contracts=self.all_contracts, owners=owners)


def feast_project(feature_repo_dir: Path) -> str:
    """The Feast project named in ``feature_store.yaml`` (the feature views' database in OpenMetadata)."""
    import yaml

    path = feature_repo_dir / "feature_store.yaml"
    try:
        project = yaml.safe_load(path.read_text()).get("project")
    except (OSError, AttributeError, yaml.YAMLError) as error:
        raise ValueError(f"cannot read the Feast project from {path}: {error}") from error
    if not isinstance(project, str) or not project:
        raise ValueError(f"{path} names no `project`")
    return project


def scope_for(settings: Any, contracts: Sequence[Contract], *, all_contracts: Sequence[Contract] | None = None,
              sources: Mapping[str, SourceLocation | Path] | None = None, events: str = "kafka") -> LineageScope:
    """The scope of publishing ``contracts`` with ``settings`` (a :class:`~pipelines.config.Settings`).

    ``sources`` are where each source's events come from, as the job that read them says (a path means a files
    location); without it, :func:`default_sources` for ``events``.
    """
    everyone = tuple(all_contracts) if all_contracts is not None else tuple(contracts)
    if sources is None:
        locations = default_sources(everyone, events, events_dir=settings.events_dir,
                                    kafka_topic=settings.kafka_topic,
                                    bootstrap_servers=settings.kafka_bootstrap_servers,
                                    group_id=settings.kafka_group_id)
    else:
        locations = {name: value if isinstance(value, FileSource | KafkaSource) else FileSource.local(value)
                     for name, value in sources.items()}
    return LineageScope(
        contracts=tuple(contracts), all_contracts=everyone, sources=locations,
        project=feast_project(settings.feature_repo_dir),
        delta_uris={c.table_name: settings.delta_table_path(c.table_name).as_uri() for c in everyone},
        flink_dir=settings.flink_dir)
