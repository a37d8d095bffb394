"""Step 1 of a request: parse and validate the body of ``POST /get-online-features`` (Feast's request shape).

Feast's body: ``{"features": ["view:feature", ...]}`` or ``{"feature_service": "name"}``, ``"entities": {join_key:
[values]}`` (columns of equal length), ``"full_feature_names": bool``. Unknown top-level keys are ignored, as
Feast's request model ignores them. Everything a client can get wrong becomes a :class:`BadRequest` naming the
problem (400, or 413 for too many entities or too large a body); nothing a client sends can cause a 500.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from pipelines.errors import PlatformError, Terminal


class BadRequest(PlatformError, Terminal):  # noqa: N818 (named after the HTTP answer it becomes)
    """A request that cannot be served as sent; ``status`` is the HTTP code (400 or 413)."""

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class OnlineRequest:
    """A validated request: feature references (or a service), entity columns, and the naming of the response."""

    features: tuple[str, ...]
    feature_service: str | None
    entities: dict[str, list[Any]]
    entity_count: int
    full_feature_names: bool


def parse_request(body: bytes, *, max_entities: int) -> OnlineRequest:
    """Parse ``body`` (JSON bytes) into an :class:`OnlineRequest`; raises :class:`BadRequest`."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise BadRequest(f"malformed JSON: {error}") from None
    if not isinstance(data, dict):
        raise BadRequest(f"the body must be a JSON object, got {type(data).__name__}")
    entities = _entities(data.get("entities"), max_entities)
    service = data.get("feature_service")
    features = data.get("features", [])
    if service is not None and not (isinstance(service, str) and service):
        raise BadRequest("`feature_service` must be a non-empty string")
    if service is None and (not isinstance(features, list) or not features
                            or not all(isinstance(f, str) for f in features)):
        raise BadRequest("`features` must be a non-empty list of \"view:feature\" strings (or name a "
                         "`feature_service`)")
    full = data.get("full_feature_names", False)
    if not isinstance(full, bool):
        raise BadRequest("`full_feature_names` must be true or false")
    count = len(next(iter(entities.values())))
    return OnlineRequest(tuple(features) if service is None else (), service, entities, count, full)


def _entities(value: Any, max_entities: int) -> dict[str, list[Any]]:
    if not isinstance(value, dict) or not value:
        raise BadRequest("`entities` must be a non-empty object of join key -> list of values")
    lengths = set()
    for key, column in value.items():
        if not isinstance(column, list):
            raise BadRequest(f"entities[{key!r}] must be a list of values")
        lengths.add(len(column))
    if len(lengths) != 1:
        raise BadRequest("every entities column must have the same length, got "
                         + ", ".join(f"{k}={len(v)}" for k, v in value.items()))
    count = lengths.pop()
    if count == 0:
        raise BadRequest("`entities` lists no entity")
    if count > max_entities:
        raise BadRequest(f"{count} entities in one request; the limit is {max_entities} (FP_SERVE__MAX_ENTITIES)",
                         status=413)
    return value
