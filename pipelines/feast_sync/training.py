"""Point-in-time-correct training sets from the Delta tables, through Feast's ``get_historical_features``.

The caller gives entity rows: the contract's join keys, a timestamp per row, and any other columns (labels, ids),
which are passed through untouched. For each row Feast's point-in-time join (run by our Delta offline store,
:mod:`pipelines.feast_sync.offline_store`) picks the feature row of the same entity with the largest ``window_end``
not after the row's timestamp (a window's values hold *as of* its ``window_end``), ties broken by the largest
``ingested_at``; a feature row older than the contract's ``serving.ttl`` is not used (the features read as null).
So no value computed from events after the row's timestamp can leak into it.

Timestamps: naive entity timestamps (no offset, as CSV files often have) are taken as UTC; others are converted to
UTC. The output keeps the input's row order and columns, then adds the contract's features in contract order.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.codegen.feast_objects import feature_service_name
from pipelines.contracts.model import Contract
from pipelines.errors import PlatformError, Terminal

if TYPE_CHECKING:
    from feast import FeatureStore

#: The entity timestamp column Feast expects; an entity file may name it otherwise (``timestamp_column``).
EVENT_TIMESTAMP = "event_timestamp"
#: Carries the input row order through Feast's join (which does not keep it); dropped from the result.
_ROW = "__fp_entity_row"
ENTITY_FILE_SUFFIXES = (".csv", ".parquet")


class TrainingSetError(PlatformError, Terminal):
    """The entity rows or the output path cannot make a training set; the message names the column, file or fix."""


@dataclass(frozen=True)
class TrainingSet:
    """A training set and where it came from: the Delta table version current when the query started."""

    table: pa.Table
    contract: Contract
    feature_names: tuple[str, ...]
    delta_version: int
    elapsed_seconds: float

    @property
    def rows(self) -> int:
        return self.table.num_rows

    def null_counts(self) -> dict[str, int]:
        """Rows without a value, per feature (no feature row at or before the timestamp within the TTL, or null)."""
        return {name: self.table.column(name).null_count for name in self.feature_names}


def read_entity_file(path: Path, text_columns: Sequence[str] = ()) -> pd.DataFrame:
    """Entity rows from a ``.csv`` or ``.parquet`` file. CSV column types are inferred, except ``text_columns`` (pass
    the join keys: ``007`` stays ``"007"``), which :func:`prepare_entities` then casts to the contract's key types."""
    path = Path(path)
    if path.suffix not in ENTITY_FILE_SUFFIXES:
        raise TrainingSetError(f"{path}: entity files must end in .csv or .parquet")
    if not path.is_file():
        raise TrainingSetError(f"{path}: no such entity file")
    if path.suffix == ".csv":
        return pd.read_csv(path, dtype=dict.fromkeys(text_columns, str), keep_default_na=False, na_values=[""])
    return pd.read_parquet(path)


def _utc(values: pd.Series, column: str) -> pd.Series:
    try:
        parsed = pd.to_datetime(values, utc=True, format="ISO8601") if values.dtype == object else values
    except (ValueError, TypeError) as error:
        raise TrainingSetError(f"entity column {column!r}: not a timestamp ({error})") from None
    if not isinstance(parsed.dtype, pd.DatetimeTZDtype):
        if not pd.api.types.is_datetime64_any_dtype(parsed):
            raise TrainingSetError(f"entity column {column!r} has type {parsed.dtype}, expected timestamps")
        parsed = parsed.dt.tz_localize("UTC")
    return parsed.dt.tz_convert("UTC").astype("datetime64[us, UTC]")


def prepare_entities(entities: pd.DataFrame, contract: Contract, *,
                     timestamp_column: str = EVENT_TIMESTAMP) -> pd.DataFrame:
    """The entity rows as Feast needs them: join keys typed as the contract says, timestamps in UTC under
    ``event_timestamp``, a row-order column; every problem raised as :class:`TrainingSetError` naming the column."""
    from pipelines.delta.schema import ARROW_TYPES

    keys = list(contract.entity.join_keys)
    features = {f.name for f in contract.features}
    missing = [c for c in (*keys, timestamp_column) if c not in entities.columns]
    if missing:
        raise TrainingSetError(f"the entity rows lack column(s) {missing}: contract {contract.name} joins on {keys} "
                               f"and the timestamp column is {timestamp_column!r} (see --timestamp-column)")
    clashes = sorted((set(entities.columns) & features) | ({_ROW} & set(entities.columns)))
    if timestamp_column != EVENT_TIMESTAMP and EVENT_TIMESTAMP in entities.columns:
        clashes.append(EVENT_TIMESTAMP)
    if clashes:
        raise TrainingSetError(f"entity column(s) {clashes} would collide with the training set's own columns: "
                               f"rename them")
    frame = entities.rename(columns={timestamp_column: EVENT_TIMESTAMP}).reset_index(drop=True)
    for column in (*keys, EVENT_TIMESTAMP):
        nulls = int(frame[column].isna().sum())
        if nulls:
            name = timestamp_column if column == EVENT_TIMESTAMP else column
            raise TrainingSetError(f"entity column {name!r} has {nulls} empty value(s)")
    frame[EVENT_TIMESTAMP] = _utc(frame[EVENT_TIMESTAMP], timestamp_column)
    for key in keys:
        arrow_type = ARROW_TYPES[contract.source.columns[key].type]
        try:
            frame[key] = pa.array(frame[key], from_pandas=True).cast(arrow_type).to_pandas()
        except (pa.ArrowInvalid, pa.ArrowTypeError, ValueError) as error:
            raise TrainingSetError(f"entity column {key!r}: cannot read as {arrow_type} ({error})") from None
    frame[_ROW] = range(len(frame))
    return frame


def build_training_set(store: FeatureStore, contract: Contract, entities: pd.DataFrame, *,
                       timestamp_column: str = EVENT_TIMESTAMP) -> TrainingSet:
    """Every feature of ``contract`` joined point-in-time onto ``entities`` with ``store.get_historical_features``.

    The store must hold the contract's feature service (``apply_repo``) and use the Delta offline store. The
    result keeps the entity rows' order and columns (the timestamp column under its original name).
    """
    from pipelines.delta.tables import table_version

    started = time.perf_counter()
    frame = prepare_entities(entities, contract, timestamp_column=timestamp_column)
    service = store.get_feature_service(feature_service_name(contract))
    source_path = store.get_feature_view(contract.table_name).batch_source.path
    delta_version = table_version(source_path)
    if delta_version is None:
        raise TrainingSetError(f"contract {contract.name} has no Delta table at {source_path} yet",
                               hint="run the pipeline (feature-platform run) or a backfill first")
    table = store.get_historical_features(entity_df=frame, features=service).to_arrow()
    table = table.take(pc.sort_indices(table.column(_ROW)))
    feature_names = tuple(f.name for f in contract.features)
    ordered = [c for c in frame.columns if c != _ROW] + list(feature_names)
    table = table.select(ordered).rename_columns(
        [timestamp_column if c == EVENT_TIMESTAMP else c for c in ordered])
    return TrainingSet(table, contract, feature_names, delta_version, time.perf_counter() - started)


def write_training_set(table: pa.Table, out: Path) -> Path:
    """Write to ``.parquet`` (types kept) or ``.csv`` (timestamps as ISO 8601 with offset); folders are created."""
    import pyarrow.csv
    import pyarrow.parquet

    out = Path(out)
    if out.suffix not in ENTITY_FILE_SUFFIXES:
        raise TrainingSetError(f"{out}: the training set file must end in .csv or .parquet")
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".parquet":
        pyarrow.parquet.write_table(table, out)
    else:
        pyarrow.csv.write_csv(table, out)
    return out
