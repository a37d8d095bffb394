"""A plan as JSON: what ``feature-platform lineage --dry-run --json`` prints, request by request.

Each request is shown as the SDK would send it: the HTTP method and path (the SDK's route for its class), and the body
serialised by the generated model itself (``by_alias``, ``None`` left out). References to entities that do not
exist yet have no id (the server assigns ids); they show their type and fully qualified name.
"""

from __future__ import annotations

from typing import Any

from pipelines.lineage.plan import LineagePlan
from pipelines.lineage.sdk import UNRESOLVED_ID

#: Entity type -> the path the SDK PUTs its create request to (``metadata.ingestion.ometa.routes``; a test checks
#: they agree, so a dry run does not import the SDK's client).
PATHS: dict[str, str] = {
    "classification": "/v1/classifications",
    "tag": "/v1/tags",
    "messagingService": "/v1/services/messagingServices",
    "storageService": "/v1/services/storageServices",
    "pipelineService": "/v1/services/pipelineServices",
    "databaseService": "/v1/services/databaseServices",
    "database": "/v1/databases",
    "databaseSchema": "/v1/databaseSchemas",
    "topic": "/v1/topics",
    "container": "/v1/containers",
    "pipeline": "/v1/pipelines",
    "table": "/v1/tables",
    "dataContract": "/v1/dataContracts",
    "lineage": "/v1/lineage",
}


def request_body(request: Any) -> dict[str, Any]:
    """The JSON body of a request, references to not-yet-created entities without their placeholder id."""
    return _drop_unresolved(request.model_dump(mode="json", by_alias=True, exclude_none=True))


def _drop_unresolved(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _drop_unresolved(item) for key, item in value.items()
                if not (key == "id" and item == str(UNRESOLVED_ID))}
    if isinstance(value, list):
        return [_drop_unresolved(item) for item in value]
    return value


def plan_to_dict(plan: LineagePlan) -> dict[str, Any]:
    """The plan as JSON-ready data: contracts, their owners, and every request in the order it would be sent."""
    return {
        "contracts": plan.contracts,
        "owners": dict(plan.owners),
        "requests": [
            {"level": r.level, "method": "PUT", "path": PATHS[r.entity_type], "entity_type": r.entity_type,
             "fqn": r.fqn, "contract": r.contract, "body": request_body(r.request)}
            for r in plan.requests
        ],
    }
