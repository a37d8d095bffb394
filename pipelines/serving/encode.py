"""Step 5 of a request: the response body in Feast's feature-server shape, serialised with orjson.

``{"metadata": {"feature_names": [...]}, "results": [{"values": [...], "statuses": [...], "event_timestamps":
[...]}, ...]}``: one result per column, entity columns first (their values echoed, ``PRESENT``, epoch timestamps),
then one per requested feature, in ``feature_names`` order. Error bodies are ``{"detail": "..."}`` as FastAPI writes
them, so clients that print Feast's errors print ours.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from pipelines.serving.fallbacks import PRESENT, Column
from pipelines.serving.values import EPOCH_TEXT


def encode_response(entity_columns: Sequence[str], entities: dict[str, list[Any]], feature_names: Sequence[str],
                    columns: Sequence[Column]) -> bytes:
    count = len(next(iter(entities.values())))
    present, epoch = [PRESENT] * count, [EPOCH_TEXT] * count
    results: list[dict[str, Any]] = [{"values": entities[name], "statuses": present, "event_timestamps": epoch}
                                     for name in entity_columns]
    results += [{"values": c.values, "statuses": c.statuses, "event_timestamps": c.timestamps} for c in columns]
    return orjson.dumps({"metadata": {"feature_names": [*entity_columns, *feature_names]}, "results": results})


def encode_error(message: str) -> bytes:
    return orjson.dumps({"detail": message})
