"""The Delta table layout of a contract: the one schema shared by the Flink output, Delta and Feast.

Columns, in order: the entity's join keys, ``window_start`` and ``window_end`` (the window the values describe;
``window_end`` is the feature timestamp: the values hold *as of* that instant), one column per feature, and
``ingested_at`` (when the row was committed, Feast's created timestamp, used to break ties on replays).
All timestamps are UTC with microsecond precision, as Delta stores them.
"""

from __future__ import annotations

import pyarrow as pa

from pipelines.contracts.model import Contract
from pipelines.layout import HIDDEN_FEATURE_COLUMNS, INGESTED_AT, WINDOW_END, WINDOW_START

TIMESTAMP = pa.timestamp("us", tz="UTC")

#: Source column types and feature types -> Arrow types.
ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "int32": pa.int32(),
    "int64": pa.int64(),
    "float": pa.float32(),
    "double": pa.float64(),
    "boolean": pa.bool_(),
    "timestamp": TIMESTAMP,
}
#: Flink SQL types of the columns Flink writes for the platform (hidden columns, dead letters) -> Arrow types.
SQL_ARROW_TYPES: dict[str, pa.DataType] = {"STRING": pa.string(), "BIGINT": pa.int64(), "TIMESTAMP(3)": TIMESTAMP}
#: The hidden columns Flink writes after the Delta ones in feature part files (read by the commit stage, never stored).
HIDDEN_SCHEMA = pa.schema([(name, SQL_ARROW_TYPES[sql_type]) for name, sql_type in HIDDEN_FEATURE_COLUMNS])


def delta_schema(contract: Contract) -> pa.Schema:
    """The Arrow schema of the contract's Delta table (keys are never null; features may be)."""
    keys = [pa.field(key, ARROW_TYPES[contract.source.columns[key].type], nullable=False)
            for key in contract.entity.join_keys]
    windows = [pa.field(WINDOW_START, TIMESTAMP, nullable=False), pa.field(WINDOW_END, TIMESTAMP, nullable=False)]
    features = [pa.field(f.name, ARROW_TYPES[f.type]) for f in contract.features]
    return pa.schema([*keys, *windows, *features, pa.field(INGESTED_AT, TIMESTAMP, nullable=False)])


def table_properties(contract: Contract) -> dict[str, str]:
    """Delta table properties that tie the data to the contract that produced it."""
    return {
        "feature_platform.contract.name": contract.name,
        "feature_platform.contract.version": contract.version,
        "feature_platform.contract.hash": contract.content_hash(),
    }
