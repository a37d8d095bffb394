"""Which fast online writer a Feast store gets: :func:`online_writer` reads the store's ``feature_store.yaml`` settings
and builds the SQLite or Redis writer for one contract's feature view.

Why apart from the writers: this is the only place that reads Feast's configuration (table ids, versioned view names,
the murmur3 field names, the Redis connection string); the writers take plain values and so can be tested and
benchmarked without a Feast store. Settings the writers do not reproduce exactly are refused here, with the
setting's name (:class:`~pipelines.feast_sync.online_writers.UnsupportedOnlineStoreError`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.contracts.model import Contract
from pipelines.feast_sync.online_writers import OnlineWriter, UnsupportedOnlineStoreError
from pipelines.feast_sync.redis_writer import RedisOnlineWriter
from pipelines.feast_sync.sqlite_writer import SqliteOnlineWriter

if TYPE_CHECKING:
    from feast import FeatureStore


def online_writer(store: FeatureStore, contract: Contract) -> OnlineWriter:
    """The fast writer for the store's online store (SQLite or single-node Redis) and the contract's feature view.

    Raises :class:`UnsupportedOnlineStoreError` for stores or options the writers do not reproduce exactly."""
    from feast.infra.online_stores.helpers import _mmh3, compute_table_id, compute_versioned_name

    config = store.config
    online = config.online_store
    view = store.get_feature_view(contract.table_name)
    versioning = bool(getattr(config.registry, "enable_online_feature_view_versioning", False))
    if config.entity_key_serialization_version != 3:
        raise UnsupportedOnlineStoreError("entity_key_serialization_version must be 3 in feature_store.yaml")
    kind = str(online.type)
    if kind == "sqlite" or kind.endswith("SqliteOnlineStore"):
        for option in ("vector_enabled", "enable_openai_compatible_store"):
            if getattr(online, option, False):
                raise UnsupportedOnlineStoreError(f"online_store.{option} is not supported by the online loader")
        from feast.infra.online_stores.helpers import get_online_store_from_config

        db_path = type(get_online_store_from_config(online))._get_db_path(config)
        return SqliteOnlineWriter(Path(db_path), compute_table_id(config.project, view, versioning))
    if kind == "redis" or kind.endswith("RedisOnlineStore"):
        if str(getattr(online.redis_type, "value", online.redis_type)) != "redis":
            raise UnsupportedOnlineStoreError(f"online_store.redis_type {online.redis_type!r}: only single-node redis")
        name = compute_versioned_name(view, versioning)
        return RedisOnlineWriter(redis_client(online.connection_string), project=config.project, view=name,
                                 feature_fields={f.name: _mmh3(f"{name}:{f.name}") for f in contract.features},
                                 key_ttl_seconds=online.key_ttl_seconds)
    raise UnsupportedOnlineStoreError(f"online_store.type {kind!r}: the online loader writes sqlite or redis")


def redis_client(connection_string: str) -> Any:
    """A redis-py client for a Feast connection string (``host:port,db=0,password=...``), with bounded timeouts so a
    dead server fails fast (and is retried by the stage) instead of hanging a worker."""
    from feast.infra.online_stores.redis import RedisOnlineStore
    from redis import Redis

    nodes, params = RedisOnlineStore._parse_connection_string(connection_string)
    params.setdefault("socket_connect_timeout", 2.0)
    params.setdefault("socket_timeout", 10.0)
    return Redis(host=nodes[0]["host"], port=int(nodes[0]["port"]), **params)
