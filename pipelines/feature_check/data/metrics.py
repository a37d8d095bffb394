"""Metrics computed once per snapshot with Arrow compute: null shares, the newest window, active keys, value scale.

Great Expectations validates the suite; these numbers feed the checks GX has no expectation for (freshness, verdicts
on a contract change, the state estimate) and the messages. Nulls of a float column include NaN: Delta and pandas
both turn a missing double into one or the other, and a consumer sees neither as a value.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.layout import WINDOW_END
from pipelines.contracts.model import Contract
from pipelines.health.activity import null_rate


def null_count(column: pa.ChunkedArray) -> int:
    """Nulls, plus NaN for floating-point columns."""
    nulls = column.null_count
    if pa.types.is_floating(column.type):
        nulls += int(pc.sum(pc.is_nan(column)).as_py() or 0)
    return nulls


def newest(column: pa.ChunkedArray) -> datetime | None:
    value = pc.max(column).as_py()
    return value if isinstance(value, datetime) else None


def active_keys(table: pa.Table, join_keys: Sequence[str]) -> int:
    """The most entities that share one ``window_end``: the keys whose windows Flink holds in state at once."""
    if table.num_rows == 0:
        return 0
    combos = table.select([*join_keys, WINDOW_END]).group_by([*join_keys, WINDOW_END]).aggregate([])
    per_window = combos.group_by([WINDOW_END]).aggregate([([], "count_all")])
    return int(pc.max(per_window["count_all"]).as_py() or 0)


@dataclass(frozen=True)
class TableMetrics:
    """What the checks need to know about one snapshot of a contract's table."""

    rows: int
    #: Per feature, the null share over the rows whose feature window held an event (:mod:`pipelines.health.activity`).
    null_share: dict[str, float] = field(default_factory=dict)
    newest_window_end: datetime | None = None
    newest_value_window_end: dict[str, datetime | None] = field(default_factory=dict)
    active_keys: int = 0
    mean_value: dict[str, float] = field(default_factory=dict)


def table_metrics(contract: Contract, table: pa.Table) -> TableMetrics:
    """Metrics of the contract's features that are present in ``table`` (absent ones are the schema check's job)."""
    rows = table.num_rows
    present = [f for f in contract.features if f.name in table.column_names]
    null_share = {f.name: null_rate(contract, f, table).rate for f in present}
    newest_value: dict[str, datetime | None] = {}
    if WINDOW_END in table.column_names:
        for feature in present:
            valid = pc.is_valid(table[feature.name])
            if pa.types.is_floating(table[feature.name].type):
                valid = pc.and_(valid, pc.invert(pc.is_nan(table[feature.name])))
            newest_value[feature.name] = newest(pc.if_else(valid, table[WINDOW_END], None))
    means = {f.name: float(pc.mean(table[f.name]).as_py() or 0.0) for f in present
             if f.aggregation == "count_distinct" and rows}
    has_keys = all(k in table.column_names for k in (*contract.entity.join_keys, WINDOW_END))
    return TableMetrics(rows=rows, null_share=null_share,
                        newest_window_end=newest(table[WINDOW_END]) if WINDOW_END in table.column_names else None,
                        newest_value_window_end=newest_value,
                        active_keys=active_keys(table, contract.entity.join_keys) if has_keys else 0,
                        mean_value=means)
