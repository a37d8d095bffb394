"""Publishing a plan to OpenMetadata through the SDK client, on the runtime: timeouts, retries, a deadline.

    summary = publish(scope, settings)         # raises a PlatformError naming what failed

Steps: open the client (:func:`pipelines.lineage.client.connect`: timeouts on every call, version check) -> resolve
each contract's owner to an OpenMetadata team or user (by name: the owner text, then the part before ``@``; not
found: no owner on the entities, and the summary says so) -> build the plan with those owners -> send it level by
level (:mod:`pipelines.lineage.plan`). Every call runs as an item of the runtime stage ``lineage`` (threads; settings
``FP_STAGES__LINEAGE__*``): transient failures (no answer, 5xx) are retried with backoff, terminal ones (4xx) stop
at once, and the whole publish shares one deadline (``FP_OPENMETADATA__DEADLINE_S``). A failure is raised once, as
the platform error of its cause, naming the entity.

Idempotent: entities are sent with ``create_or_update`` (PUT, by name) and edges with ``add_lineage`` (PUT
``/v1/lineage``, not the SDK's merging PATCH: the contract is the whole truth, so an edge is replaced, never merged
with stale columns). A second publish of unchanged contracts sends the identical bodies, which OpenMetadata
applies as no change (the entity versions stay as they were); the summary lists every entity with its version.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipelines.config import Settings
from pipelines.errors import PlatformError, ServiceUnavailableError
from pipelines.lineage.client import check_lineage_answer, connect, import_sdk_client, require_server, translate
from pipelines.lineage.plan import LineagePlan, LineageScope, PlannedRequest
from pipelines.lineage.sdk import UNRESOLVED_ID, skip_sdk_package_init
from pipelines.runtime import Deadline, Stage, StageError, StageTimeout

Progress = Callable[[str], None]


@dataclass(frozen=True)
class PublishedEntity:
    """One entity or edge as OpenMetadata holds it after the publish."""

    entity_type: str
    fqn: str
    id: str | None
    version: float | None
    contract: str | None
    column_lineage: int = 0


@dataclass
class PublishSummary:
    """What a publish did: every entity and edge, the owners found, what was left out, how long it took."""

    url: str
    entities: list[PublishedEntity] = field(default_factory=list)
    owners: dict[str, str | None] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    elapsed_seconds: float = 0.0

    @property
    def edges(self) -> list[PublishedEntity]:
        return [e for e in self.entities if e.entity_type == "lineage"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "entities": [{"type": e.entity_type, "fqn": e.fqn, "id": e.id, "version": e.version,
                          "contract": e.contract, **({"column_lineage": e.column_lineage} if e.column_lineage else {})}
                         for e in self.entities],
            "edges": len(self.edges),
            "column_lineage": sum(e.column_lineage for e in self.edges),
            "owners": self.owners,
            "warnings": self.warnings,
            "elapsed_seconds": round(self.elapsed_seconds, 2),
        }


@dataclass(frozen=True)
class _Step:
    """One call to the server, run by the stage (``what`` names it in errors)."""

    what: str
    call: Callable[[], Any]


def _run_step(step: _Step) -> Any:
    return step.call()


class _Publisher:
    def __init__(self, om: Any, url: str, stage: Stage, deadline: Deadline, deadline_s: float) -> None:
        self.om, self.url, self.stage, self.deadline, self.deadline_s = om, url, stage, deadline, deadline_s
        self.ids: dict[tuple[str, str], str] = {}

    def run(self, steps: Sequence[_Step]) -> list[Any]:
        try:
            return list(self.stage.map(list(steps), deadline=self.deadline))
        except StageTimeout as error:
            raise ServiceUnavailableError(
                f"OpenMetadata did not answer in time: publishing stopped at its deadline of {self.deadline_s:g} s",
                hint="check that the server answers at FP_OPENMETADATA__URL, or raise FP_OPENMETADATA__DEADLINE_S",
                url=self.url) from error
        except StageError as error:
            cause = error.cause
            if isinstance(cause, PlatformError):
                raise cause from error
            raise translate(cause or error, "publish", self.url) from error

    def guarded(self, what: str, call: Callable[[], Any]) -> _Step:
        def attempt() -> Any:
            try:
                return call()
            except PlatformError:
                raise
            except Exception as error:
                raise translate(error, what, self.url) from error

        return _Step(what, attempt)

    def create(self, planned: PlannedRequest) -> _Step:
        what = f"PUT {planned.entity_type} {planned.fqn}"

        def call() -> PublishedEntity:
            entity = self.om.create_or_update(with_ids(planned.request, self.ids))
            version = getattr(entity, "version", None)
            return PublishedEntity(planned.entity_type, planned.fqn, str(entity.id.root),
                                   float(version.root) if version is not None else None, planned.contract)

        return self.guarded(what, call)

    def add_edge(self, planned: PlannedRequest) -> _Step:
        what = f"PUT lineage {planned.fqn}"

        def call() -> PublishedEntity:
            request = with_ids(planned.request, self.ids)
            check_lineage_answer(self.om.add_lineage(request, check_patch=False), what, self.url)
            columns = request.edge.lineageDetails.columnsLineage if request.edge.lineageDetails else None
            return PublishedEntity("lineage", planned.fqn, None, None, planned.contract, len(columns or []))

        return self.guarded(what, call)


def with_ids(request: Any, ids: Mapping[tuple[str, str], str]) -> Any:
    """``request`` with every placeholder reference given the id of the entity it names (revalidated by its model).

    Raises ``KeyError`` naming the references no earlier level created (a bug in the plan's levels).
    """
    missing: list[tuple[str, str]] = []

    def fill(value: Any) -> Any:
        if isinstance(value, dict):
            if value.get("id") == str(UNRESOLVED_ID):
                key = (value.get("type"), value.get("fullyQualifiedName"))
                if key in ids:
                    value = {**value, "id": ids[key]}
                else:
                    missing.append(key)
            return {k: fill(v) for k, v in value.items()}
        if isinstance(value, list):
            return [fill(v) for v in value]
        return value

    data = fill(request.model_dump(mode="json", by_alias=True, exclude_none=True))
    if missing:
        raise KeyError(f"no id for {missing}: they must be created at a lower level of the plan")
    return type(request).model_validate(data)


def owner_candidates(owner: str) -> list[str]:
    """Names an owner may have in OpenMetadata: as written, then the part before ``@`` of an e-mail address."""
    names = [owner]
    if "@" in owner and owner.split("@", 1)[0]:
        names.append(owner.split("@", 1)[0])
    return names


def _find_owner(om: Any, owner: str) -> Any:
    """The team or user named like ``owner`` (teams first: contract owners are usually teams), or None."""
    skip_sdk_package_init()
    from metadata.generated.schema.entity.teams.team import Team
    from metadata.generated.schema.entity.teams.user import User
    from metadata.generated.schema.type.entityReference import EntityReference
    from metadata.generated.schema.type.entityReferenceList import EntityReferenceList

    for entity_class, entity_type in ((Team, "team"), (User, "user")):
        for name in owner_candidates(owner):
            found = om.get_by_name(entity_class, name)
            if found is not None:
                return EntityReferenceList([EntityReference(
                    id=found.id.root, type=entity_type, fullyQualifiedName=found.fullyQualifiedName.root)])
    return None


def publish(scope: LineageScope, settings: Settings, *, progress: Progress | None = None,
            client_factory: Callable[[], Any] | None = None) -> PublishSummary:
    """Publish the lineage of ``scope`` to the server of ``settings.openmetadata`` (see the module docstring).

    ``client_factory`` replaces :func:`~pipelines.lineage.client.connect` (tests). Raises
    :class:`~pipelines.errors.UsageError` when no server is configured,
    :class:`~pipelines.errors.ServiceUnavailableError` when it does not answer in time,
    :class:`~pipelines.lineage.client.LineageRejectedError` when it refuses a request.
    """
    say = progress or (lambda _message: None)
    config = settings.openmetadata
    if client_factory is None:
        require_server(config)  # a usage error at once, not after the SDK's import
        import_sdk_client()
    started = time.perf_counter()
    deadline = Deadline.after(config.deadline_s)
    summary = PublishSummary(url=config.url or "")
    with Stage("lineage", _run_step, kind="thread", config=settings.stage("lineage")) as stage:
        publisher = _Publisher(None, summary.url, stage, deadline, config.deadline_s)
        open_client = client_factory or (lambda: connect(config))
        publisher.om = publisher.run([publisher.guarded("version check", open_client)])[0]
        say(f"openmetadata: connected to {config.url}")
        owners = _resolve_owners(publisher, scope, summary)
        plan = scope.plan(owners)
        _send(publisher, plan, summary, say)
    summary.elapsed_seconds = time.perf_counter() - started
    return summary


def _resolve_owners(publisher: _Publisher, scope: LineageScope, summary: PublishSummary) -> dict[str, Any]:
    wanted = sorted({c.owner for c in scope.contracts})
    found = publisher.run([publisher.guarded(f"find owner {owner}", lambda o=owner: _find_owner(publisher.om, o))
                           for owner in wanted])
    by_owner = dict(zip(wanted, found, strict=True))
    owners: dict[str, Any] = {}
    for contract in scope.contracts:
        reference = by_owner[contract.owner]
        if reference is None:
            summary.owners[contract.table_name] = None
            summary.warnings.append(f"{contract.table_name}: owner {contract.owner!r} is no team or user in "
                                    f"OpenMetadata; entities published without an owner (the data contract and "
                                    f"descriptions still name it)")
        else:
            owners[contract.table_name] = reference
            summary.owners[contract.table_name] = reference.root[0].fullyQualifiedName
    return owners


def _send(publisher: _Publisher, plan: LineagePlan, summary: PublishSummary, say: Progress) -> None:
    for level, requests in enumerate(plan.levels()):
        steps = [publisher.add_edge(r) if r.entity_type == "lineage" else publisher.create(r) for r in requests]
        published = publisher.run(steps)
        for planned, entity in zip(requests, published, strict=True):
            if entity.id is not None:
                publisher.ids[(planned.entity_type, planned.fqn)] = entity.id
        summary.entities += published
        say(f"openmetadata: level {level}: {len(published)} request(s) done")
