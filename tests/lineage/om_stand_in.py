"""A recording stand-in for an OpenMetadata 1.13 server on 127.0.0.1, for the lineage tests.

**It is not OpenMetadata.** A real server cannot run on this machine (it is published only as Docker images), so
the tests run the real SDK client (``OpenMetadata`` with a real ``OpenMetadataConnection``) against this small HTTP
server, which answers only the endpoints that client calls when the platform publishes lineage:

* ``GET /api/v1/system/version`` (the client's version check);
* ``PUT /api/v1/<collection>`` (``create_or_update``) for the collections the platform writes;
* ``GET /api/v1/<collection>/name/<fqn>`` (``get_by_name``: owners are looked up as teams and users);
* ``PUT /api/v1/lineage`` (``add_lineage``) and the ``GET /api/v1/lineage/<type>/<id>`` it does afterwards.

Every request body is validated with the SDK's own generated model for that endpoint (``extra='forbid'``), and the
checks the real server makes that matter here are repeated: the parent named by FQN exists, tags and owners exist,
lineage ends exist and every column of a column lineage is a column of its entity. A failed check answers like the
server (``{"code": ..., "message": ...}`` with a 4xx). Like the server, a PUT whose body equals the stored one keeps
the entity's version; a changed body raises it by 0.1. Every request is recorded for the tests to inspect.

Knobs for failure tests: ``silent`` (accept connections, never answer), and ``fail(path_prefix, status, times)``
(answer ``status`` to the next ``times`` requests whose path starts with ``path_prefix``).
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

from pipelines.lineage.sdk import skip_sdk_package_init

VERSION = "1.13.4"


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    query: str
    body: Any
    authorization: str | None


class HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _collections() -> dict[str, tuple[type, type, str, tuple[str, str] | None]]:
    """collection -> (create model, entity model, entity type, (field naming the parent, parent collection))."""
    skip_sdk_package_init()
    from metadata.generated.schema.api.classification.createClassification import CreateClassificationRequest
    from metadata.generated.schema.api.classification.createTag import CreateTagRequest
    from metadata.generated.schema.api.data.createContainer import CreateContainerRequest
    from metadata.generated.schema.api.data.createDatabase import CreateDatabaseRequest
    from metadata.generated.schema.api.data.createDatabaseSchema import CreateDatabaseSchemaRequest
    from metadata.generated.schema.api.data.createDataContract import CreateDataContractRequest
    from metadata.generated.schema.api.data.createPipeline import CreatePipelineRequest
    from metadata.generated.schema.api.data.createTable import CreateTableRequest
    from metadata.generated.schema.api.data.createTopic import CreateTopicRequest
    from metadata.generated.schema.api.services.createDatabaseService import CreateDatabaseServiceRequest
    from metadata.generated.schema.api.services.createMessagingService import CreateMessagingServiceRequest
    from metadata.generated.schema.api.services.createPipelineService import CreatePipelineServiceRequest
    from metadata.generated.schema.api.services.createStorageService import CreateStorageServiceRequest
    from metadata.generated.schema.entity.classification.classification import Classification
    from metadata.generated.schema.entity.classification.tag import Tag
    from metadata.generated.schema.entity.data.container import Container
    from metadata.generated.schema.entity.data.database import Database
    from metadata.generated.schema.entity.data.databaseSchema import DatabaseSchema
    from metadata.generated.schema.entity.data.dataContract import DataContract
    from metadata.generated.schema.entity.data.pipeline import Pipeline
    from metadata.generated.schema.entity.data.table import Table
    from metadata.generated.schema.entity.data.topic import Topic
    from metadata.generated.schema.entity.services.databaseService import DatabaseService
    from metadata.generated.schema.entity.services.messagingService import MessagingService
    from metadata.generated.schema.entity.services.pipelineService import PipelineService
    from metadata.generated.schema.entity.services.storageService import StorageService

    return {
        "classifications": (CreateClassificationRequest, Classification, "classification", None),
        "tags": (CreateTagRequest, Tag, "tag", ("classification", "classifications")),
        "services/messagingServices": (CreateMessagingServiceRequest, MessagingService, "messagingService", None),
        "services/storageServices": (CreateStorageServiceRequest, StorageService, "storageService", None),
        "services/pipelineServices": (CreatePipelineServiceRequest, PipelineService, "pipelineService", None),
        "services/databaseServices": (CreateDatabaseServiceRequest, DatabaseService, "databaseService", None),
        "databases": (CreateDatabaseRequest, Database, "database", ("service", "services/databaseServices")),
        "databaseSchemas": (CreateDatabaseSchemaRequest, DatabaseSchema, "databaseSchema", ("database", "databases")),
        "topics": (CreateTopicRequest, Topic, "topic", ("service", "services/messagingServices")),
        "containers": (CreateContainerRequest, Container, "container", ("service", "services/storageServices")),
        "pipelines": (CreatePipelineRequest, Pipeline, "pipeline", ("service", "services/pipelineServices")),
        "tables": (CreateTableRequest, Table, "table", ("databaseSchema", "databaseSchemas")),
        "dataContracts": (CreateDataContractRequest, DataContract, "dataContract", None),
    }


def quote_name(name: str) -> str:
    return f'"{name}"' if "." in name else name


class StandInOpenMetadata:
    """See the module docstring. Use as a context manager; ``url`` is the API root the SDK is given."""

    def __init__(self, *, token: str = "stand-in-token", silent: bool = False) -> None:
        self.token = token
        self.silent = silent
        self.requests: list[Recorded] = []
        self.entities: dict[str, dict[str, dict[str, Any]]] = {}  # collection -> fqn -> {"entity", "body"}
        self.edges: dict[tuple[str, str], dict[str, Any]] = {}
        self.teams: dict[str, dict[str, Any]] = {}
        self._failures: list[list[Any]] = []
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._collections = _collections()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="om-stand-in", daemon=True)

    # -- lifecycle ----------------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/api"

    def __enter__(self) -> StandInOpenMetadata:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    # -- knobs and views ----------------------------------------------------------------------------------------
    def fail(self, path_prefix: str, status: int, times: int = 1_000_000) -> None:
        """Answer ``status`` to the next ``times`` requests whose path starts with ``path_prefix``."""
        self._failures.append([path_prefix, status, times])

    def add_team(self, name: str) -> None:
        self.teams[name] = {"id": str(uuid.uuid4()), "name": name, "fullyQualifiedName": quote_name(name),
                            "teamType": "Group", "version": 0.1}

    def puts(self) -> list[Recorded]:
        return [r for r in self.requests if r.method == "PUT"]

    def entity(self, collection: str, fqn: str) -> dict[str, Any]:
        return self.entities[collection][fqn]["entity"]

    # -- the server ---------------------------------------------------------------------------------------------
    def _handler(self) -> type[BaseHTTPRequestHandler]:
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args: Any) -> None:
                pass

            def _serve(self, method: str) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                with stand_in._lock:
                    stand_in.requests.append(Recorded(method, parts.path, parts.query, body,
                                                      self.headers.get("Authorization")))
                if stand_in.silent:
                    stand_in._release.wait()
                    return
                try:
                    status, answer = stand_in._answer(method, parts.path, body, self.headers.get("Authorization"))
                except HttpError as error:
                    status, answer = error.status, {"code": error.status, "message": str(error)}
                payload = json.dumps(answer).encode() if answer is not None else b""
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self) -> None:  # noqa: N802 (http.server's API)
                self._serve("GET")

            def do_PUT(self) -> None:  # noqa: N802
                self._serve("PUT")

            def do_PATCH(self) -> None:  # noqa: N802
                self._serve("PATCH")

            def do_POST(self) -> None:  # noqa: N802
                self._serve("POST")

        return Handler

    def _answer(self, method: str, path: str, body: Any, authorization: str | None) -> tuple[int, Any]:
        if authorization != f"Bearer {self.token}":
            raise HttpError(401, "Not authorized; no or wrong token")
        for failure in self._failures:
            if path.startswith(failure[0]) and failure[2] > 0:
                failure[2] -= 1
                raise HttpError(failure[1], f"injected failure {failure[1]}")
        route = path.removeprefix("/api/v1/")
        with self._lock:
            if method == "GET" and route == "system/version":
                return 200, {"version": VERSION, "revision": "stand-in", "timestamp": 0}
            if method == "GET" and route.startswith("teams/name/"):
                return self._get_named(self.teams, unquote(route.removeprefix("teams/name/")), "team")
            if method == "GET" and route.startswith("users/name/"):
                raise HttpError(404, f"user instance for {unquote(route.removeprefix('users/name/'))} not found")
            if method == "PUT" and route == "lineage":
                return self._add_lineage(body)
            if method == "GET" and route.startswith("lineage/"):
                return self._get_lineage(route)
            if method == "PUT" and route in self._collections:
                return self._put(route, body)
            if method == "GET" and "/name/" in route:
                collection, name = route.split("/name/", 1)
                if collection in self._collections:
                    stored = {fqn: item["entity"] for fqn, item in self.entities.get(collection, {}).items()}
                    return self._get_named(stored, unquote(name), collection)
        raise HttpError(404, f"the stand-in does not serve {method} {path}")

    @staticmethod
    def _get_named(items: dict[str, dict[str, Any]], fqn: str, what: str) -> tuple[int, Any]:
        if fqn not in items:
            raise HttpError(404, f"{what} instance for {fqn} not found")
        return 200, items[fqn]

    def _find(self, collection: str, fqn: str) -> dict[str, Any]:
        found = self.entities.get(collection, {}).get(fqn)
        if found is None:
            raise HttpError(404, f"{collection} instance for {fqn} not found")
        return found["entity"]

    def _by_id(self, entity_id: str) -> tuple[str, dict[str, Any]]:
        for collection, items in self.entities.items():
            for item in items.values():
                if item["entity"]["id"] == entity_id:
                    return collection, item["entity"]
        for team in self.teams.values():
            if team["id"] == entity_id:
                return "teams", team
        raise HttpError(404, f"entity {entity_id} not found")

    def _put(self, collection: str, body: Any) -> tuple[int, Any]:
        from pydantic import ValidationError

        create_model, entity_model, entity_type, parent = self._collections[collection]
        try:
            create_model.model_validate(body)
        except ValidationError as error:
            raise HttpError(400, f"invalid {create_model.__name__}: {error}") from None
        entity = {key: value for key, value in body.items()}
        if parent is not None:
            field, parent_collection = parent
            parent_entity = self._find(parent_collection, body[field])
            entity[field] = _ref(parent_entity, self._collections[parent_collection][2])
            fqn = f"{parent_entity['fullyQualifiedName']}.{quote_name(body['name'])}"
            for inherited in ("service", "database"):
                if inherited in parent_entity and inherited not in entity:
                    entity[inherited] = parent_entity[inherited]
        elif collection == "dataContracts":
            _, target = self._by_id(body["entity"]["id"])
            fqn = f"{target['fullyQualifiedName']}.{quote_name(body['name'])}"
        else:
            fqn = quote_name(body["name"])
        for label in body.get("tags") or []:
            self._find("tags", label["tagFQN"])
        for owner in body.get("owners") or []:
            self._by_id(owner["id"])
        items = self.entities.setdefault(collection, {})
        earlier = items.get(fqn)
        if earlier is None:
            entity_id, version, status = str(uuid.uuid4()), 0.1, 201
        else:
            entity_id = earlier["entity"]["id"]
            changed = earlier["body"] != body
            version = round(earlier["entity"]["version"] + (0.1 if changed else 0.0), 1)
            status = 200
        entity.update(id=entity_id, fullyQualifiedName=fqn, version=version, deleted=False,
                      href=f"{self.url}/v1/{collection}/{entity_id}")
        if entity_type == "table":
            entity["columns"] = [{**column, "fullyQualifiedName": f"{fqn}.{column['name']}"}
                                 for column in body["columns"]]
        entity_model.model_validate(entity)  # the answer must be what the SDK can read
        items[fqn] = {"entity": entity, "body": body}
        return status, entity

    def _children(self, collection: str, entity: dict[str, Any]) -> set[str]:
        fqn = entity["fullyQualifiedName"]
        if collection == "tables":
            columns = entity["columns"]
        elif collection == "topics":
            columns = (entity.get("messageSchema") or {}).get("schemaFields") or []
        elif collection == "containers":
            columns = (entity.get("dataModel") or {}).get("columns") or []
        else:
            columns = []
        return {f"{fqn}.{column['name']}" for column in columns}

    def _add_lineage(self, body: Any) -> tuple[int, Any]:
        from pydantic import ValidationError

        skip_sdk_package_init()
        from metadata.generated.schema.api.lineage.addLineage import AddLineageRequest

        try:
            AddLineageRequest.model_validate(body)
        except ValidationError as error:
            raise HttpError(400, f"invalid AddLineageRequest: {error}") from None
        edge = body["edge"]
        from_collection, from_entity = self._by_id(edge["fromEntity"]["id"])
        to_collection, to_entity = self._by_id(edge["toEntity"]["id"])
        details = edge.get("lineageDetails") or {}
        if details.get("pipeline"):
            self._by_id(details["pipeline"]["id"])
        from_columns = self._children(from_collection, from_entity)
        to_columns = self._children(to_collection, to_entity)
        for column in details.get("columnsLineage") or []:
            for name in column["fromColumns"]:
                if name not in from_columns:
                    raise HttpError(400, f"Invalid column name {name}")
            if column["toColumn"] not in to_columns:
                raise HttpError(400, f"Invalid column name {column['toColumn']}")
        self.edges[(from_entity["id"], to_entity["id"])] = body
        return 200, None

    def _get_lineage(self, route: str) -> tuple[int, Any]:
        _, entity_type, entity_id = route.split("/", 2)
        _, entity = self._by_id(entity_id)
        downstream = [{"fromEntity": f, "toEntity": t, "lineageDetails": body["edge"].get("lineageDetails")}
                      for (f, t), body in self.edges.items() if f == entity_id]
        return 200, {"entity": _ref(entity, entity_type), "nodes": [], "upstreamEdges": [],
                     "downstreamEdges": downstream}


def _ref(entity: dict[str, Any], entity_type: str) -> dict[str, Any]:
    return {"id": entity["id"], "type": entity_type, "name": entity["name"],
            "fullyQualifiedName": entity["fullyQualifiedName"]}
