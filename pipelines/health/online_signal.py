"""Online coverage: the share of recently active entities that have a non-expired value in the online store.

The recently active entities are those with a row in the newest complete step of the contract version's table
(:mod:`pipelines.health.table_signals`). Each is looked up through Feast's online API (the store the contract's
feature service is served from); an entity is covered when at least one of its features has a value whose event
timestamp is within ``serving.ttl`` of now (Feast's SQLite store is read with one query of our own, any other store
through Feast's online API). The signal is the *missing rate* = 1 − coverage, held to the contract's
``rollout.gates.missing_rate_max``: it is exactly what a model reading this version would not get.
"""

from __future__ import annotations

import calendar
import sqlite3
from collections.abc import Mapping, Sequence
from contextlib import closing
from datetime import datetime
from pathlib import Path
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


def sqlite_live_entities(db_path: Path | str, table: str, keys: Sequence[bytes], features: Sequence[str],
                         now: datetime, ttl_s: float) -> set[bytes]:
    """The serialised entity keys among ``keys`` that have a live value in Feast's SQLite online table ``table``:
    one query for every entity (Feast's own read decodes every value of every feature into Python, ~0.4 s for 2,000
    entities on a quiet machine: longer than a rollout's evaluation interval). A null is stored as an empty value;
    ``event_ts`` is what Feast's sqlite3 adapter wrote (a naive UTC time read as local), read back the same way."""
    quoted = '"' + table.replace('"', '""') + '"'
    sql = (f"SELECT entity_key, MAX(event_ts) FROM {quoted} WHERE entity_key IN ({','.join('?' * len(keys))}) "
           f"AND feature_name IN ({','.join('?' * len(features))}) AND length(value) > 0 GROUP BY entity_key")
    with closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=10.0)) as db:
        rows = db.execute(sql, [*keys, *features]).fetchall()
    horizon, utc = now.timestamp() - ttl_s, {}
    for _, stamp in rows:  # entities loaded together share a few stamps: convert each once
        if stamp is not None and stamp not in utc:
            utc[stamp] = calendar.timegm(datetime.fromtimestamp(int(stamp)).timetuple())
    return {key for key, stamp in rows if stamp is not None and utc[stamp] >= horizon}


def missing_in_sqlite(store: Any, contract: Contract, entities: Sequence[Mapping[str, Any]], now: datetime) -> int:
    """How many of ``entities`` have no live value in Feast's SQLite store ``store`` (one query)."""
    from pipelines.feast_sync.online_encoding import encode_entity_keys

    join_keys = list(contract.entity.join_keys)
    rows = pa.Table.from_pylist([dict(entity) for entity in entities])
    keys = encode_entity_keys(rows, join_keys, [contract.source.columns[k].type for k in join_keys])
    live = sqlite_live_entities(store.config.online_store.path, f"{store.project}_{contract.table_name}", keys,
                                [f.name for f in contract.features], now, contract.serving.ttl.total_seconds())
    return sum(key not in live for key in keys)


def missing_through_feast(store: Any, contract: Contract, entities: Sequence[Mapping[str, Any]],
                           now: datetime) -> int:
    """How many of ``entities`` have no live value, read through Feast's online API (any online store)."""
    from pipelines.feast_sync.online import read_online

    values = read_online(store, contract, entities, include_event_timestamps=True)
    names = [f.name for f in contract.features]
    ttl = contract.serving.ttl.total_seconds()
    return sum(not covered(values, names, i, now, ttl) for i in range(len(entities)))


def missing_rate_signal(contract: Contract, entities: Sequence[Mapping[str, Any]], settings: Settings, now: datetime,
                        limit: float, store: Any | None = None) -> Signal:
    """``missing_rate`` of ``contract`` over ``entities`` (:func:`active_entities` of its newest complete step);
    ``unknown`` when the online store cannot be read (the error is named). Feast's SQLite store is read with one
    query (:func:`sqlite_live_entities`), any other through Feast's online API."""
    if not contract.serving.online:
        return Signal.measured("missing_rate", 0.0, None, "share", "the contract is not served online")
    if not entities:
        return Signal.measured("missing_rate", 0.0, limit, "share", "no active entity in the newest complete step")
    try:
        from pipelines.feast_sync.online import open_online_store

        store = store if store is not None else open_online_store(settings)
        if getattr(store.config.online_store, "type", None) == "sqlite":
            missing = missing_in_sqlite(store, contract, entities, now)
        else:
            missing = missing_through_feast(store, contract, entities, now)
    except Exception as error:  # any failure to read the store means "cannot tell", named
        return Signal.unknown("missing_rate", limit, "share",
                              f"online store ({settings.online_store}) unreadable: {type(error).__name__}: {error}")
    return Signal.measured("missing_rate", missing / len(entities), limit, "share",
                           f"{missing:,} of {len(entities):,} recently active entities have no live online value")
