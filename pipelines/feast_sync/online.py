"""Loading a contract's Delta rows into the Feast online store (after each commit, or for any time range), and
reading them back.

Why our own loader instead of ``feast materialize``: the online store only ever serves the newest row per entity, so
the rows are reduced to exactly that first (one DuckDB query over Arrow), then encoded column by column and written in
batches by the store-specific writers (:mod:`pipelines.feast_sync.sqlite_writer`,
:mod:`pipelines.feast_sync.redis_writer`, chosen by :mod:`pipelines.feast_sync.writer_for_store`; the same bytes Feast
writes, many times faster). Batches go through the runtime's ``online-load`` stage: worker threads, the hybrid limiter
(writes/s = entities/s, and concurrency, from ``settings.stage("online-load")``), retries of transient errors,
deadlines.

What is loaded, and why it is idempotent (``docs/online-loading.md``):

* every row carries ``window_end`` as its event time and ``ingested_at`` as its created time; the writers keep a stored
  value unless the incoming one is newer by (event, created) time, so replaying a commit changes nothing and a
  correction with the same event time (a later commit) wins;
* :func:`load_commit` loads the rows a Delta version added; the store remembers the last Delta version it reflects (a
  marker written after the data), so a gap (a commit never loaded) or a store that lost its data (a Redis restart
  without persistence) is detected and the whole snapshot is reloaded instead;
* a Redis restart *during* a load is detected through the server's ``run_id`` and the load is repeated over the whole
  snapshot, so nothing written before the restart can stay lost;
* :func:`load_latest_online` and :func:`materialize` without a time range make the store equal the snapshot
  (``replace`` writes, so values also move back after a Delta delete); with a range they only ever move values forward.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.codegen.feast_objects import feature_service_name
from pipelines.contracts.model import Contract
from pipelines.delta.tables import read_commit_rows, read_version, table_version
from pipelines.errors import PlatformError, Terminal
from pipelines.feast_sync.online_encoding import encode_rows
from pipelines.feast_sync.online_writers import OnlineRows, OnlineWriter, WriteMode
from pipelines.feast_sync.writer_for_store import online_writer
from pipelines.layout import INGESTED_AT, WINDOW_END, WINDOW_START

if TYPE_CHECKING:
    from feast import FeatureStore

    from pipelines.config import Settings
    from pipelines.runtime import RetryPolicy, StageConfig

#: Entities per batch when the caller does not say (``batch_rows=None``), per store: a SQLite transaction has a fixed
#: cost (journal, sync) that larger batches spread (20 k measured ~25 % faster than 5 k); Redis batches are one
#: round trip each and gain nothing from growing, while smaller ones keep the stage's pipelining fine-grained.
DEFAULT_BATCH_ROWS = {"sqlite": 20_000, "redis": 5_000}
STAGE_NAME = "online-load"
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class LoadResult:
    """What one online load did: which snapshot it read, how many entities it wrote and how long it took.

    ``rows_loaded`` counts the newest-per-entity rows sent to the store; ``rows_written`` those the store took,
    ``rows_skipped`` those it kept because it held a newer value. ``restarts`` counts loads repeated because the
    store's server restarted meanwhile; ``full_reload`` says the whole snapshot was loaded (first load, gap, lost data).
    """

    table_name: str
    delta_version: int
    snapshot_rows: int
    rows_loaded: int
    batches: int
    elapsed_seconds: float
    rows_written: int = 0
    rows_skipped: int = 0
    restarts: int = 0
    full_reload: bool = True
    #: The largest ``window_end`` among the rows loaded (None: no rows), how fresh the store is for this load.
    newest_event_time: datetime | None = None
    stage_metrics: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def rows_per_second(self) -> float:
        return self.rows_loaded / self.elapsed_seconds if self.elapsed_seconds > 0 else 0.0


class OnlineLoadError(PlatformError, Terminal):
    """A load could not finish (the store stayed unreachable, or kept restarting); the message says what to re-run."""




def newest_per_entity(rows: pa.Table, contract: Contract) -> pa.Table:
    """One row per entity: the largest ``window_end``, ties broken by the largest ``ingested_at``.

    Rows are returned sorted by the join keys, so batches (and anything derived from them) are reproducible.
    """
    keys = ", ".join(f'"{key}"' for key in contract.entity.join_keys)
    columns = ", ".join(f'"{name}"' for name in rows.column_names if name != WINDOW_START)
    query = (f"SELECT {columns} FROM rows QUALIFY row_number() OVER "
             f'(PARTITION BY {keys} ORDER BY "{WINDOW_END}" DESC, "{INGESTED_AT}" DESC) = 1 ORDER BY {keys}')
    with duckdb.connect() as connection:
        connection.register("rows", rows)
        return connection.sql(query).to_arrow_table()


def in_time_range(rows: pa.Table, start: datetime | None, end: datetime | None) -> pa.Table:
    """Rows whose ``window_end`` (event time) lies in ``[start, end]``; an open side is unbounded."""
    mask = None
    column = rows.column(WINDOW_END)
    for bound, compare in ((start, pc.greater_equal), (end, pc.less_equal)):
        if bound is not None:
            scalar = pa.scalar(bound, type=column.type)
            part = compare(column, scalar)
            mask = part if mask is None else pc.and_(mask, part)
    return rows if mask is None else rows.filter(mask)


# ------------------------------------------------------------------------------------------------------------ store
def open_online_store(settings: Settings) -> FeatureStore:
    """The project's Feast store on ``settings``' data folder with the online store ``settings.online_store`` names:
    the SQLite file (:func:`pipelines.feast_sync.store.open_store`) or Feast's Redis store at ``settings.redis_url``."""
    from feast import FeatureStore
    from feast.repo_config import RepoConfig

    from pipelines.feast_sync.store import feast_dir, open_store, repo_config_dict

    if settings.online_store == "sqlite":
        return open_store(settings)
    feast_dir(settings).mkdir(parents=True, exist_ok=True)
    config = {**repo_config_dict(settings), "online_store": {"type": "redis", "connection_string": settings.redis_url}}
    return FeatureStore(repo_path=str(settings.feature_repo_dir),
                        config=RepoConfig(repo_path=settings.feature_repo_dir, **config))


# ------------------------------------------------------------------------------------------------------------ loading
@dataclass(frozen=True)
class _Encoding:
    join_keys: tuple[str, ...]
    key_types: tuple[str, ...]
    feature_types: dict[str, str]
    with_texts: bool

    @classmethod
    def of(cls, contract: Contract, writer: OnlineWriter) -> _Encoding:
        keys = tuple(contract.entity.join_keys)
        return cls(keys, tuple(contract.source.columns[k].type for k in keys),
                   {f.name: f.type for f in contract.features}, writer.kind == "sqlite")

    def encode(self, rows: pa.Table) -> OnlineRows:
        return encode_rows(rows, join_keys=self.join_keys, key_types=self.key_types,
                           feature_types=self.feature_types, event_column=WINDOW_END, created_column=INGESTED_AT,
                           with_texts=self.with_texts)


def _stage_config(config: StageConfig | None) -> StageConfig:
    if config is not None:
        return config
    from pipelines.config import get_settings

    return get_settings().stage(STAGE_NAME)


def _batch_rows(batch_rows: int, config: StageConfig) -> int:
    """Batches never ask the limiter for more tokens than its burst (it would refuse them); with a rate, a batch is at
    most a tenth of a second of writes, so the achieved rate stays smooth."""
    limit = batch_rows
    if config.rate is not None:
        burst = config.burst if config.burst is not None else max(1, int(config.rate))
        limit = min(limit, burst, max(1, int(config.rate / 10)))
    elif config.burst is not None:
        limit = min(limit, config.burst)
    return max(1, limit)


def _slices(rows: pa.Table, size: int) -> Iterator[pa.Table]:
    for offset in range(0, rows.num_rows, size):
        yield rows.slice(offset, size)


def write_rows(writer: OnlineWriter, contract: Contract, rows: pa.Table, *, mode: WriteMode = "newer",
               batch_rows: int | None = None, stage_config: StageConfig | None = None,
               retry: RetryPolicy | None = None, progress: Progress | None = None) -> tuple[int, int, int, dict]:
    """Write the newest row per entity of ``rows`` through the ``online-load`` stage.

    Returns (entities sent, written, batches, stage metrics). Each batch is encoded and written by a worker thread
    after passing the limiter (one token per entity)."""
    from pipelines.runtime import Stage

    config = _stage_config(stage_config)
    latest = newest_per_entity(rows, contract)
    encoding = _Encoding.of(contract, writer)
    size = _batch_rows(DEFAULT_BATCH_ROWS[writer.kind] if batch_rows is None else batch_rows, config)

    def load_batch(batch: pa.Table) -> int:
        return writer.write(encoding.encode(batch), mode).written

    done = written = batches = 0
    with Stage(STAGE_NAME, load_batch, kind="thread", config=config, tokens=lambda batch: batch.num_rows,
               retry=retry) as stage:
        for batch_written, batch in zip(stage.map(_slices(latest, size)), _slices(latest, size), strict=True):
            written += batch_written
            done += batch.num_rows
            batches += 1
            if progress is not None:
                progress(done, latest.num_rows)
        metrics = stage.metrics.to_dict()
    return latest.num_rows, written, batches, metrics


def load_commit(store: FeatureStore, contract: Contract, delta_table_path: Path, version: int | None = None, *,
                batch_rows: int | None = None, stage_config: StageConfig | None = None,
                retry: RetryPolicy | None = None, max_restarts: int = 3, progress: Progress | None = None,
                writer: OnlineWriter | None = None) -> LoadResult:
    """Load what Delta ``version`` (default: the current one) committed: the newest row per entity of its rows.

    Falls back to the whole snapshot at ``version`` when the store holds no marker (first load, or its data was
    lost), when versions between the marker and ``version`` were never loaded, or when a commit removed files."""
    return _load(store, contract, delta_table_path, version=version, full=False, mode="newer", batch_rows=batch_rows,
                 stage_config=stage_config, retry=retry, max_restarts=max_restarts, progress=progress, writer=writer)


def load_latest_online(store: FeatureStore, contract: Contract, delta_table_path: Path, *,
                       batch_rows: int | None = None, stage_config: StageConfig | None = None,
                       retry: RetryPolicy | None = None, max_restarts: int = 3, progress: Progress | None = None,
                       writer: OnlineWriter | None = None) -> LoadResult:
    """Make the online store hold the newest row per entity of the Delta table's current snapshot.

    The feature view must have been applied (:func:`pipelines.feast_sync.store.apply_repo`). Values are replaced even
    when the stored ones are newer, so after a Delta delete or overwrite the store follows the snapshot. Idempotent."""
    return _load(store, contract, delta_table_path, version=None, full=True, mode="replace", batch_rows=batch_rows,
                 stage_config=stage_config, retry=retry, max_restarts=max_restarts, progress=progress, writer=writer)


def materialize(store: FeatureStore, contract: Contract, delta_table_path: Path, *, start: datetime | None = None,
                end: datetime | None = None, batch_rows: int | None = None,
                stage_config: StageConfig | None = None, retry: RetryPolicy | None = None, max_restarts: int = 3,
                progress: Progress | None = None, writer: OnlineWriter | None = None) -> LoadResult:
    """Reload the online store from the Delta snapshot for rows with ``window_end`` in ``[start, end]`` (the
    recovery path). Without bounds this is :func:`load_latest_online`; with bounds values only move forward (a
    stored newer value is kept), so a ranged reload can never undo a later live load."""
    if start is None and end is None:
        return load_latest_online(store, contract, delta_table_path, batch_rows=batch_rows, stage_config=stage_config,
                                  retry=retry, max_restarts=max_restarts, progress=progress, writer=writer)
    if start is not None and end is not None and start > end:
        raise ValueError(f"start {start.isoformat()} is after end {end.isoformat()}")
    return _load(store, contract, delta_table_path, version=None, full=True, mode="newer", batch_rows=batch_rows,
                 stage_config=stage_config, retry=retry, max_restarts=max_restarts, progress=progress, writer=writer,
                 time_range=(start, end))


def _load(store: FeatureStore, contract: Contract, delta_table_path: Path, *, version: int | None, full: bool,
          mode: WriteMode, batch_rows: int | None, stage_config: StageConfig | None, retry: RetryPolicy | None,
          max_restarts: int, progress: Progress | None, writer: OnlineWriter | None,
          time_range: tuple[datetime | None, datetime | None] | None = None) -> LoadResult:
    if batch_rows is not None and batch_rows < 1:
        raise ValueError(f"batch_rows must be at least 1, got {batch_rows}")
    started = time.perf_counter()
    own_writer = writer is None
    writer = writer or online_writer(store, contract)
    try:
        for restart in range(max_restarts + 1):
            epoch = writer.server_epoch()
            marker = writer.read_marker()
            target, rows, whole = _rows_to_load(delta_table_path, version, marker, full=full or restart > 0)
            if time_range is not None:
                rows = in_time_range(rows, *time_range)
            loaded, written, batches, metrics = write_rows(
                writer, contract, rows, mode=mode, batch_rows=batch_rows, stage_config=stage_config, retry=retry,
                progress=progress)
            if time_range is None and (whole or marker is None or target > marker):
                writer.write_marker(target)  # after the data: a marker never claims rows the store does not hold
            if writer.server_epoch() == epoch:  # checked after the marker: a restart before it is caught too
                return LoadResult(contract.table_name, target, rows.num_rows, loaded, batches,
                                  time.perf_counter() - started, written, loaded - written, restart, whole,
                                  _newest_event_time(rows), metrics)
        raise OnlineLoadError(f"the online store of {contract.table_name} restarted during each of {max_restarts + 1} "
                              f"loads; run `feature-platform materialize --contract {contract.name}` once it is stable")
    finally:
        if own_writer:
            writer.close()


def _newest_event_time(rows: pa.Table) -> datetime | None:
    if rows.num_rows == 0:
        return None
    newest = pc.max(rows.column(WINDOW_END)).as_py()
    return newest if isinstance(newest, datetime) else None


def _rows_to_load(path: Path, version: int | None, marker: int | None, *, full: bool) -> tuple[int, pa.Table, bool]:
    """(Delta version, rows to load, whether they are the whole snapshot) for a load up to ``version``."""
    target = table_version(path) if version is None else version
    if target is None:
        raise OnlineLoadError(f"no Delta table at {path}", hint="run the pipeline (feature-platform run) first")
    if not full and marker is not None and marker >= 0:
        first = target if marker >= target else marker + 1  # a replay reloads the commit itself
        rows = read_commit_rows(path, first, target)
        if rows is not None:
            return target, rows, False
    _, snapshot = read_version(path, target)
    return target, snapshot, True


# ------------------------------------------------------------------------------------------------------------ reading
def read_online(store: FeatureStore, contract: Contract, entity_rows: Sequence[Mapping[str, Any]], *,
                include_event_timestamps: bool = False) -> dict[str, list[Any]]:
    """Online values of the contract's feature service for ``entity_rows`` (``[{"user_id": "u1"}, ...]``).

    Returns Feast's column form: ``{join_key: [...], feature: [...], ...}``, one position per entity row, ``None``
    where the store has no value.
    """
    service = store.get_feature_service(feature_service_name(contract))
    response = store.get_online_features(features=service, entity_rows=[dict(row) for row in entity_rows])
    return response.to_dict(include_event_timestamps=include_event_timestamps)
