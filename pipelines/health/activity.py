"""Which rows a feature's null rate is measured over: the rows whose feature window held at least one event.

A row exists for every step in which the contract's *largest* window holds an event; a feature over a smaller window
can have no event in its own window in that row. Over such an empty window ``count``, ``count_distinct`` and ``sum``
are 0 and ``avg``, ``min``, ``max`` and ``last`` are NULL (see :mod:`pipelines.codegen.flink_sql`): that NULL says
"nothing happened", not "data is missing". The null rate every check reports (``feature-check --data``, ``health``,
the rollout gates) is therefore measured over the rows where the feature's window held an event, so that it counts
only nulls that come from missing input data.

How a row shows that the feature's window held an event, from the Delta table alone:

* the feature's window is the contract's largest: every row (that is why the row exists);
* otherwise the contract has a ``count`` without a column over the same window (``COUNT(*)``): rows where it is > 0;
* otherwise nothing in the table tells: every row, and :func:`activity_of` says so (``exact=False``), so the report
  can ask the author to add such a count.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.contracts.model import Contract, Feature

#: Aggregations whose value over an empty window is NULL (the others are 0).
NULL_WHEN_EMPTY = frozenset({"avg", "min", "max", "last"})


@dataclass(frozen=True)
class Activity:
    """How to pick the rows a feature's null rate is measured over.

    ``count_column`` is ``None`` when every row counts. ``exact`` is False when the contract gives no way to tell an
    empty window from missing data for this feature (every row counts, so an empty window reads as a null).
    """

    count_column: str | None
    exact: bool = True


def activity_of(contract: Contract, feature: Feature) -> Activity:
    """Where to look, in a row of ``contract``'s table, for whether ``feature``'s window held an event."""
    if feature.window.size >= contract.max_window or feature.aggregation not in NULL_WHEN_EMPTY:
        return Activity(None)
    for other in contract.features:
        if other.aggregation == "count" and other.column is None and other.window.size == feature.window.size:
            return Activity(other.name)
    return Activity(None, exact=False)


def active_rows_mask(contract: Contract, feature: Feature, table: pa.Table) -> pa.ChunkedArray | None:
    """A boolean mask of the rows ``feature``'s null rate is measured over; ``None`` means every row."""
    activity = activity_of(contract, feature)
    if activity.count_column is None or activity.count_column not in table.column_names:
        return None
    return pc.fill_null(pc.greater(table[activity.count_column], 0), False)


def null_mask(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Nulls, plus NaN in floating-point columns (a consumer sees neither as a value)."""
    mask = pc.is_null(column)
    if pa.types.is_floating(column.type):
        mask = pc.or_(mask, pc.fill_null(pc.is_nan(column), False))
    return mask


@dataclass(frozen=True)
class NullRate:
    """Nulls among the rows whose feature window held an event."""

    nulls: int
    rows: int

    @property
    def rate(self) -> float:
        return self.nulls / self.rows if self.rows else 0.0


def null_rate(contract: Contract, feature: Feature, table: pa.Table) -> NullRate:
    """The null rate of ``feature`` in ``table``, over the rows whose feature window held an event."""
    nulls = null_mask(table[feature.name])
    active = active_rows_mask(contract, feature, table)
    if active is None:
        return NullRate(int(pc.sum(nulls).as_py() or 0), table.num_rows)
    return NullRate(int(pc.sum(pc.and_(nulls, active)).as_py() or 0), int(pc.sum(active).as_py() or 0))
