"""What can be served: one :class:`ViewSpec` per online contract (``<contract>_v<major>``), built from the contracts.

Why from the contracts and not from Feast's registry: the contract is the source of truth that produced the registry
(``pipelines.codegen.feast_objects``), it holds what the registry does not (the degradation plan), and reading it
needs neither Feast (seconds of import, ~100 MB per worker) nor the registry file. What the store layout needs from
Feast's configuration (project name, key serialisation) is read from ``feature_store.yaml`` as the loaders read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import mmh3

from pipelines.config import Settings
from pipelines.contracts.model import Contract
from pipelines.contracts.valid import load_valid_contracts
from pipelines.errors import PlatformError, Terminal


class CatalogError(PlatformError, Terminal):
    """The store's configuration cannot be served (a setting the readers do not reproduce); the message names it."""


@dataclass(frozen=True)
class FeatureSpec:
    """One servable feature: its type and what to return when its value is missing or stale."""

    name: str
    type: str
    fallback: str = "none"  # default | last_known | none (docs/contracts.md, degradation)
    default: Any = None
    redis_field: bytes = b""  # Feast's hash field: murmur3 of "<view>:<feature>", little endian


@dataclass(frozen=True)
class ViewSpec:
    """One feature view as the store holds it: ``<contract>_v<major>``, its keys, features, TTL and store names."""

    name: str
    contract: str
    major: int
    join_keys: tuple[str, ...]
    key_types: tuple[str, ...]
    features: dict[str, FeatureSpec]
    ttl_seconds: float
    sqlite_table: str
    redis_ts_field: bytes
    feature_order: tuple[str, ...] = field(default=())


def _typed(value: Any, feature_type: str) -> Any:
    """A fallback value in the feature's JSON type: a Feast client infers the value's type from JSON (``0`` for a
    double feature would come back as an int64)."""
    if feature_type == "double":
        return float(value)
    if feature_type == "int64":
        return int(value)
    return value


def view_spec(contract: Contract, project: str) -> ViewSpec:
    """The :class:`ViewSpec` of ``contract`` in Feast ``project`` (the names Feast 0.67 gives its table and fields)."""
    name = contract.table_name
    features = {}
    for feature in contract.features:
        plan = contract.degradation.get(feature.name)
        default = _typed(plan.value, feature.type) if plan is not None and plan.value is not None else None
        features[feature.name] = FeatureSpec(
            feature.name, feature.type, plan.fallback if plan else "none", default,
            mmh3.hash(f"{name}:{feature.name}", signed=False).to_bytes(4, "little"))
    keys = tuple(contract.entity.join_keys)
    return ViewSpec(name=name, contract=contract.name, major=contract.major_version, join_keys=keys,
                    key_types=tuple(contract.source.columns[key].type for key in keys), features=features,
                    ttl_seconds=contract.serving.ttl.total_seconds(), sqlite_table=f"{project}_{name}",
                    redis_ts_field=f"_ts:{name}".encode(), feature_order=tuple(features))


@dataclass(frozen=True)
class Catalog:
    """Every servable view by name, the contracts' views by contract name, and the Feast project."""

    project: str
    views: dict[str, ViewSpec]
    by_contract: dict[str, list[ViewSpec]]

    @classmethod
    def of(cls, contracts: list[Contract], project: str) -> Catalog:
        views = {c.table_name: view_spec(c, project) for c in contracts if c.serving.online}
        by_contract: dict[str, list[ViewSpec]] = {}
        for view in views.values():
            by_contract.setdefault(view.contract, []).append(view)
        for versions in by_contract.values():
            versions.sort(key=lambda v: v.major)
        return cls(project, views, by_contract)


def store_config(settings: Settings) -> dict[str, Any]:
    """``feature_store.yaml`` as the loaders read it (file registry and SQLite pinned to the data folder)."""
    from pipelines.feast_sync.store import repo_config_dict

    config = repo_config_dict(settings)
    if config.get("entity_key_serialization_version", 3) != 3:
        raise CatalogError("entity_key_serialization_version must be 3 in feature_store.yaml")
    registry = config.get("registry") or {}
    if isinstance(registry, dict) and registry.get("enable_online_feature_view_versioning"):
        raise CatalogError("registry.enable_online_feature_view_versioning is not served (views are versioned by "
                           "contract major instead: <contract>_v<major>)")
    return config


def load_catalog(settings: Settings) -> Catalog:
    """The catalog of every valid contract under ``settings.contracts_dir``."""
    project = str(store_config(settings)["project"])
    return Catalog.of(load_valid_contracts(settings.contracts_dir), project)
