"""The Feast store of a Settings object, and applying every contract's objects to it.

``feature_repo/feature_store.yaml`` is the single description of the store (project, provider, offline store, key
serialisation). Our own code reads it and pins what depends on the data folder from a ``Settings`` object: the file
registry and the SQLite online store, with absolute paths under ``settings.data_dir / "feast"`` and Feast's stock
store classes. So tests and jobs with their own data folder never touch ``data/``, and never depend on the environment
or the working directory. (The Feast CLI reaches the same files through ``pipelines.feast_sync.data_dir``.)

Another configuration file can be given instead (the stack variant, ``feature_repo/stack/feature_store.yaml``: Redis
online store). ``${VAR}`` references in it are expanded as Feast expands them; a Redis online store or an SQL registry
is kept as written, and only a file registry or SQLite store is pinned to the data folder.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from pipelines.config import Settings
from pipelines.contracts.model import Contract
from pipelines.feast_sync.repo import RepoObjects, build_repo_objects

if TYPE_CHECKING:
    from feast import FeatureStore
    from feast.repo_config import RepoConfig
    from feast.repo_contents import RepoContents

FEATURE_STORE_YAML = "feature_store.yaml"


def feast_dir(settings: Settings) -> Path:
    """Where the registry and the SQLite online store live: ``<data_dir>/feast``."""
    return settings.data_dir / "feast"


def registry_path(settings: Settings) -> Path:
    return feast_dir(settings) / "registry.db"


def online_store_path(settings: Settings) -> Path:
    return feast_dir(settings) / "online_store.db"


#: Online store types that live in a file under the data folder (Feast's SQLite store and our data-folder plug-in).
_SQLITE_TYPES = frozenset({"sqlite", "pipelines.feast_sync.data_dir.DataDirSqliteOnlineStore"})


def repo_config_dict(settings: Settings, config_file: Path | None = None) -> dict[str, Any]:
    """``config_file`` (default: the repository's ``feature_store.yaml``) with a file registry and a SQLite online
    store pinned to ``settings``' data folder; other registries and online stores are kept as written."""
    path = config_file or settings.feature_repo_dir / FEATURE_STORE_YAML
    raw = yaml.safe_load(os.path.expandvars(Path(path).read_text(encoding="utf-8")))
    registry = raw.get("registry") or {}
    if isinstance(registry, str) or registry.get("registry_type", "file") == "file":
        registry = {k: v for k, v in ({} if isinstance(registry, str) else registry).items()
                    if k != "registry_store_type"}
        registry.update(registry_type="file", path=str(registry_path(settings)))
    online = dict(raw.get("online_store") or {"type": "sqlite"})
    if online.get("type", "sqlite") in _SQLITE_TYPES:
        online.update(type="sqlite", path=str(online_store_path(settings)))
    return {**raw, "registry": registry, "online_store": online}


def repo_config(settings: Settings, config_file: Path | None = None) -> RepoConfig:
    from feast.repo_config import RepoConfig

    return RepoConfig(repo_path=settings.feature_repo_dir, **repo_config_dict(settings, config_file))


def open_store(settings: Settings, config_file: Path | None = None) -> FeatureStore:
    """A FeatureStore on ``settings``' data folder (created if missing), configured by ``config_file`` (default: the
    repository's ``feature_store.yaml``). Objects are not applied: see apply_repo."""
    from feast import FeatureStore

    feast_dir(settings).mkdir(parents=True, exist_ok=True)
    return FeatureStore(repo_path=str(settings.feature_repo_dir), config=repo_config(settings, config_file))


@dataclass(frozen=True)
class AppliedRepo:
    """What :func:`apply_repo` registered and what it changed (``("created feature view user_txn_stats_v1", ...)``;
    empty when the store already matched the contracts)."""

    objects: RepoObjects
    changes: tuple[str, ...]


def repo_contents(store: FeatureStore, repo: RepoObjects) -> RepoContents:
    """``repo`` as the ``RepoContents`` Feast's planner expects (what ``feast apply`` parses from a repository)."""
    from feast import Project
    from feast.repo_contents import RepoContents

    return RepoContents(
        projects=[Project(name=store.project)],
        data_sources=[c.objects.source for c in repo.contracts],
        feature_views=[c.objects.feature_view for c in repo.contracts],
        on_demand_feature_views=[],
        stream_feature_views=[],
        label_views=[],
        entities=list(repo.entities),
        feature_services=[c.objects.feature_service for c in repo.contracts],
        permissions=[],
    )


def apply_repo(store: FeatureStore, contracts_with_paths: Iterable[tuple[Contract, Path]]) -> AppliedRepo:
    """Make the store's project hold exactly the objects of ``contracts_with_paths`` (contract, absolute Delta path).

    This is what ``feast apply`` does for a local SQLite store, without a subprocess or a change of working directory:
    plan the registry and infrastructure diffs, then apply them (online tables are created, and objects that no longer
    come from any contract are deleted with their tables). Applying the same contracts again changes nothing.
    """
    from feast.diff.property_diff import TransitionType
    from feast.feature_view import DUMMY_ENTITY_NAME

    repo = build_repo_objects(contracts_with_paths)
    registry_diff, infra_diff, new_infra = store.plan(repo_contents(store, repo))
    # ``_apply_diffs`` is the step ``feast apply`` runs after planning; FeatureStore has no public twin of it.
    store._apply_diffs(registry_diff, infra_diff, new_infra)
    verbs = {TransitionType.CREATE: "created", TransitionType.UPDATE: "updated", TransitionType.DELETE: "deleted"}
    changes = [f"{verbs[d.transition_type]} {d.feast_object_type.value} {d.name}"
               for d in registry_diff.feast_object_diffs if d.transition_type in verbs and d.name != DUMMY_ENTITY_NAME]
    changes += [f"{verbs[d.transition_type]} {d.infra_object_type} {d.name}"
                for d in infra_diff.infra_object_diffs if d.transition_type in verbs]
    return AppliedRepo(repo, tuple(changes))


def is_applied(store: FeatureStore, contracts_with_paths: Iterable[tuple[Contract, Path]]) -> bool:
    """Whether the registry already holds every contract's feature view and service as these contracts (same content
    hash) and Delta paths define them: if so, readers need no ``apply_repo`` first."""
    from feast.errors import FeastObjectNotFoundException

    from pipelines.codegen.feast_objects import feature_service_name

    for contract, path in contracts_with_paths:
        try:
            view = store.get_feature_view(contract.table_name)
            service = store.get_feature_service(feature_service_name(contract))
        except FeastObjectNotFoundException:
            return False
        if (view.tags.get("contract_hash") != contract.content_hash() or view.batch_source.path != str(path)
                or service.tags.get("contract_hash") != contract.content_hash()):
            return False
    return True
