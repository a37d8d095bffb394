"""Online coverage: the share of recently active entities that have a non-expired value in the online store.

The recently active entities are those with a row in the newest complete step of the contract version's table
(:mod:`pipelines.health.table_signals`). Each is looked up through Feast's online API (the store the contract's
feature service is served from); an entity is covered when at least one of its features has a value whose event
timestamp is within ``serving.ttl`` of now. The signal is the *missing rate* = 1 − coverage, held to the contract's
``rollout.gates.missing_rate_max``: it is exactly what a model reading this version would not get.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import pyarrow as pa

from pipelines.config import Settings
from pipelines.contracts.model import Contract
from pipelines.health.signals import Signal

#: At most this many active entities are looked up (spread evenly over the sorted keys): enough for a rate to 0.1 %.
SAMPLE_MAX = 5_000
TIMESTAMP_POSTFIX = "__ts"


def active_entities(contract: Contract, step_rows: pa.Table, limit: int = SAMPLE_MAX) -> list[dict[str, Any]]:
    """The distinct entities of the step, sorted by key, thinned evenly to at most ``limit``."""
    keys = list(contract.entity.join_keys)
    rows = sorted({tuple(row[k] for k in keys) for row in step_rows.select(keys).to_pylist()})
    if len(rows) > limit:
        stride = len(rows) / limit
        rows = [rows[int(i * stride)] for i in range(limit)]
    return [dict(zip(keys, row, strict=True)) for row in rows]


def covered(values: Mapping[str, Sequence[Any]], features: Sequence[str], index: int, now: datetime,
            ttl_s: float) -> bool:
    """Whether entity ``index`` of a Feast ``to_dict(include_event_timestamps=True)`` answer has a live value."""
    for feature in features:
        value = values.get(feature, [None] * (index + 1))[index]
        stamps = values.get(feature + TIMESTAMP_POSTFIX)
        if value is None:
            continue
        if stamps is None or now.timestamp() - float(stamps[index] or 0) <= ttl_s:
            return True
    return False


def missing_rate_signal(contract: Contract, step_rows: pa.Table, settings: Settings, now: datetime,
                        limit: float, store: Any | None = None) -> Signal:
    """``missing_rate`` of ``contract`` for the active entities of ``step_rows``; ``unknown`` when the online
    store cannot be read (the error is named)."""
    if not contract.serving.online:
        return Signal.measured("missing_rate", 0.0, None, "share", "the contract is not served online")
    entities = active_entities(contract, step_rows)
    if not entities:
        return Signal.measured("missing_rate", 0.0, limit, "share", "no active entity in the newest complete step")
    try:
        from pipelines.feast_sync.online import open_online_store, read_online

        store = store if store is not None else open_online_store(settings)
        values = read_online(store, contract, entities, include_event_timestamps=True)
    except Exception as error:  # any failure to read the store means "cannot tell", named
        return Signal.unknown("missing_rate", limit, "share",
                              f"online store ({settings.online_store}) unreadable: {type(error).__name__}: {error}")
    names = [f.name for f in contract.features]
    ttl = contract.serving.ttl.total_seconds()
    missing = sum(not covered(values, names, i, now, ttl) for i in range(len(entities)))
    return Signal.measured("missing_rate", missing / len(entities), limit, "share",
                           f"{missing:,} of {len(entities):,} recently active entities have no live online value")
