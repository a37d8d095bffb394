"""Feast plug-ins that resolve relative registry and online-store paths against ``Settings.data_dir``.

Why: the Feast CLI (``feast -c feature_repo apply``) reads ``feature_repo/feature_store.yaml`` and resolves relative
paths against the repository folder; Feast offers no way to make them follow our ``FP_DATA_DIR`` (``${VAR}`` in the yaml
is expanded only when the variable is set, with no default). These subclasses are loaded by Feast from the yaml
(``registry_store_type`` and the online store ``type`` accept class paths) and change nothing but where the files live:
``data/feast/...`` by default, ``$FP_DATA_DIR/feast/...`` when overridden. Absolute paths are kept as written.

Our own code does not use them: :func:`pipelines.feast_sync.store.repo_config` builds the configuration from a
Settings object with absolute paths and Feast's stock ``sqlite`` store.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from feast.infra.online_stores.sqlite import SqliteOnlineStore, SqliteOnlineStoreConfig
from feast.infra.registry.file import FileRegistryStore
from feast.protos.feast.core.Registry_pb2 import Registry as RegistryProto
from feast.repo_config import RegistryConfig, RepoConfig
from pydantic import field_validator

from pipelines.config import get_settings


def resolve_in_data_dir(path: str | Path) -> Path:
    """``path`` itself when absolute, else ``Settings.data_dir / path`` (read from the environment, ``FP_DATA_DIR``)."""
    path = Path(path)
    return path if path.is_absolute() else get_settings().data_dir / path


class DataDirRegistryStore(FileRegistryStore):
    """Feast's file registry, with a relative ``registry.path`` resolved against the data folder."""

    def __init__(self, registry_config: RegistryConfig, repo_path: Path) -> None:
        super().__init__(registry_config, repo_path)
        self._filepath = resolve_in_data_dir(registry_config.path)

    def _write_registry(self, registry_proto: RegistryProto) -> None:
        # Feast creates only the last folder; a fresh data folder needs the whole chain.
        self._filepath.parent.mkdir(parents=True, exist_ok=True)
        super()._write_registry(registry_proto)


class DataDirSqliteOnlineStoreConfig(SqliteOnlineStoreConfig):
    """Feast's SQLite online store settings, selecting :class:`DataDirSqliteOnlineStore` from the yaml.

    After validation ``type`` reads ``"sqlite"``: Feast derives the store class from this config class (not from
    ``type``), but takes its plan-and-apply-diffs route, which records the online tables in the registry as
    ``feast apply`` normally does, only when ``type == "sqlite"``. Without it ``feast plan`` would report the tables as
    new forever and disagree with our own (stock ``sqlite``) store on the same files.
    """

    type: Literal["sqlite", "pipelines.feast_sync.data_dir.DataDirSqliteOnlineStore"] = "sqlite"  # type: ignore[assignment]

    @field_validator("type")
    @classmethod
    def _behave_as_sqlite(cls, value: str) -> str:
        return "sqlite"


class DataDirSqliteOnlineStore(SqliteOnlineStore):
    """Feast's SQLite online store, with a relative ``online_store.path`` resolved against the data folder."""

    @staticmethod
    def _get_db_path(config: RepoConfig) -> str:
        path = resolve_in_data_dir(config.online_store.path)
        path.parent.mkdir(parents=True, exist_ok=True)
        return str(path)
