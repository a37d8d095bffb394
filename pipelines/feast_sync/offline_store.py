"""A Feast offline store that reads Delta tables through their log (deltalake) and joins them in DuckDB.

Why our own: Feast 0.67 ships two stores that could read our Delta tables, and neither works here.

* The default ``file`` (dask) store reads every parquet file in the table folder and ignores the Delta log: after a
  delete, an overwrite or a compaction it returns rows that are no longer in the table.
* The ``duckdb`` store reads Delta with ``ibis.read_delta``, which ibis 12 implements with DuckDB's ``delta``
  extension only (there is no option to use the ``deltalake`` package instead). DuckDB downloads that extension on
  first use, and the PyPI packages that bundle it stop at DuckDB 1.5.x while the lock has DuckDB 2.0.1. Without
  network access historical retrieval fails.

This store is Feast's duckdb store with one part replaced: the reader. Each Delta source is read with
``deltalake.DeltaTable(path).to_pyarrow_table()`` (the current snapshot, exactly the files the log lists) and handed to
ibis as an in-memory Arrow table; the point-in-time join, the TTL bound, deduplication on the created timestamp and the
retrieval job are Feast's own ibis code (``feast.infra.offline_stores.ibis``), executed by ibis' default DuckDB
backend (session time zone UTC). So ``get_historical_features``, ``materialize`` and ``pull_latest`` all see the
snapshot, never stale files, and behave exactly like Feast's duckdb store otherwise.

Selected in ``feature_store.yaml`` with ``offline_store: {type: pipelines.feast_sync.offline_store.DeltaOfflineStore}``
(Feast loads ``<class path>Config`` for the settings). Only Delta ``FileSource`` objects are accepted; anything else is
refused with the source's name. Writes (``offline_write_batch``, saved datasets) go through Feast's duckdb writer, which
uses deltalake too. Feast's data-monitoring hooks are not implemented (they need the same extension).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import ibis
import pandas as pd
import pyarrow as pa
from feast.data_format import DeltaFormat
from feast.data_source import DataSource
from feast.feature_logging import LoggingConfig, LoggingSource
from feast.feature_view import FeatureView
from feast.infra.offline_stores.duckdb import _write_data_source
from feast.infra.offline_stores.file_source import FileSource
from feast.infra.offline_stores.ibis import (
    get_historical_features_ibis,
    offline_write_batch_ibis,
    pull_all_from_table_or_query_ibis,
    pull_latest_from_table_or_query_ibis,
    write_logged_features_ibis,
)
from feast.infra.offline_stores.offline_store import OfflineStore, RetrievalJob
from feast.infra.registry.base_registry import BaseRegistry
from feast.repo_config import FeastConfigBaseModel, RepoConfig
from ibis.expr.types import Table

from pipelines.errors import PlatformError, Terminal

#: The value of ``offline_store.type`` that selects this store.
STORE_TYPE = "pipelines.feast_sync.offline_store.DeltaOfflineStore"


class DeltaOfflineStoreConfig(FeastConfigBaseModel):
    """``offline_store`` settings: only the type. Delta paths come from each feature view's ``FileSource``."""

    type: Literal["pipelines.feast_sync.offline_store.DeltaOfflineStore"] = STORE_TYPE


class DeltaSourceError(PlatformError, Terminal):
    """A data source this store cannot read (not a Delta ``FileSource``)."""


def delta_table_uri(data_source: DataSource, repo_path: str | Path | None) -> str:
    """Where the source's Delta table lives: its path as written when absolute or a URI (``s3://...``), else resolved
    against the Feast repository (never against the working directory)."""
    if not isinstance(data_source, FileSource) or not isinstance(data_source.file_format, DeltaFormat):
        raise DeltaSourceError(
            f"data source {data_source.name!r} is not a Delta FileSource: the offline store {STORE_TYPE} reads only "
            f"FileSource(file_format=DeltaFormat()) sources")
    path = data_source.path
    if "://" in path or Path(path).is_absolute() or repo_path is None:
        return path
    return str((Path(repo_path) / path).resolve())


def _storage_options(data_source: FileSource) -> dict[str, str] | None:
    """Object-store credentials the source declares (same keys as Feast's duckdb store), or None for local tables."""
    options: dict[str, str] = {}
    credentials = data_source.resolve_credentials() or {}
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        if credentials.get(key):
            options[key] = credentials[key]
    if data_source.s3_endpoint_override:
        options["AWS_ENDPOINT_URL"] = data_source.s3_endpoint_override
    return options or None


def read_delta_snapshot(data_source: DataSource, repo_path: str) -> Table:
    """The current snapshot of the source's Delta table as an ibis table (an in-memory Arrow table: the rows of the
    files the Delta log lists at its newest version, nothing else)."""
    from pipelines.delta.tables import read_table

    uri = delta_table_uri(data_source, repo_path)
    assert isinstance(data_source, FileSource)  # checked by delta_table_uri
    snapshot = read_table(uri, storage_options=_storage_options(data_source))
    if snapshot is None:
        raise DeltaSourceError(f"no Delta table at {uri}", table=data_source.name,
                               hint="run the pipeline (feature-platform run) or a backfill first")
    return ibis.memtable(snapshot)


_Writer = Callable[..., None]
_WRITER: _Writer = _write_data_source


class DeltaOfflineStore(OfflineStore):
    """Feast's duckdb offline store reading Delta snapshots with deltalake (see the module docstring)."""

    supports_filter_by_created_timestamp = True

    @staticmethod
    def pull_latest_from_table_or_query(
        config: RepoConfig, data_source: DataSource, join_key_columns: list[str], feature_name_columns: list[str],
        timestamp_field: str, created_timestamp_column: str | None, start_date: datetime, end_date: datetime,
    ) -> RetrievalJob:
        return pull_latest_from_table_or_query_ibis(
            config=config, data_source=data_source, join_key_columns=join_key_columns,
            feature_name_columns=feature_name_columns, timestamp_field=timestamp_field,
            created_timestamp_column=created_timestamp_column, start_date=start_date, end_date=end_date,
            data_source_reader=read_delta_snapshot, data_source_writer=_WRITER)

    @staticmethod
    def get_historical_features(
        config: RepoConfig, feature_views: list[FeatureView], feature_refs: list[str],
        entity_df: pd.DataFrame | str, registry: BaseRegistry, project: str, full_feature_names: bool = False,
        filter_by_created_timestamp: bool = False,
    ) -> RetrievalJob:
        if not isinstance(entity_df, pd.DataFrame):
            raise TypeError(f"{STORE_TYPE} takes the entity rows as a pandas DataFrame, not an SQL query")
        return get_historical_features_ibis(
            config=config, feature_views=feature_views, feature_refs=feature_refs, entity_df=entity_df,
            registry=registry, project=project, full_feature_names=full_feature_names,
            data_source_reader=read_delta_snapshot, data_source_writer=_WRITER,
            filter_by_created_timestamp=filter_by_created_timestamp)

    @staticmethod
    def pull_all_from_table_or_query(
        config: RepoConfig, data_source: DataSource, join_key_columns: list[str], feature_name_columns: list[str],
        timestamp_field: str, created_timestamp_column: str | None = None, start_date: datetime | None = None,
        end_date: datetime | None = None,
    ) -> RetrievalJob:
        return pull_all_from_table_or_query_ibis(
            config=config, data_source=data_source, join_key_columns=join_key_columns,
            feature_name_columns=feature_name_columns, timestamp_field=timestamp_field,
            created_timestamp_column=created_timestamp_column, start_date=start_date, end_date=end_date,
            data_source_reader=read_delta_snapshot, data_source_writer=_WRITER)

    @staticmethod
    def offline_write_batch(config: RepoConfig, feature_view: FeatureView, table: pa.Table,
                            progress: Callable[[int], Any] | None) -> None:
        offline_write_batch_ibis(config=config, feature_view=feature_view, table=table, progress=progress,
                                 data_source_writer=_WRITER)

    @staticmethod
    def write_logged_features(config: RepoConfig, data: pa.Table | Path, source: LoggingSource,
                              logging_config: LoggingConfig, registry: BaseRegistry) -> None:
        write_logged_features_ibis(config=config, data=data, source=source, logging_config=logging_config,
                                   registry=registry)
