"""Consistency of the newest Delta version with the previous one: row count and per-feature distribution shift.

* **Row count** (``data-row-count-shift``): the relative change from the previous data version to the newest. Losing
  more than ``row_count_drop_max`` of the rows (an overwrite or delete that dropped data) or growing by more than
  ``row_count_growth_max`` (a replay that duplicated a backlog) warns.
* **Distribution** (``data-distribution-shift``): like with like: the rows the newest version added (``ingested_at``
  newer than any row of the previous version; all rows when the newest version rewrote the table) against the
  previous version's rows over the same number of steps (its newest), complete steps only on both sides (a bounded
  run's end-of-input flush emits windows that hold only part of their events: :func:`complete_steps`), per feature, nulls left out (the null-rate check covers them). Numeric features: the population stability
  index over ``shift_bins`` quantile bins of the previous rows, and the two-sample Kolmogorov-Smirnov statistic.
  Strings and booleans: the PSI over the previous version's ``shift_bins - 1`` most common values plus "other".
  Either statistic above its threshold (``psi_max``, ``ks_max``) warns. Fewer than ``shift_min_rows`` rows on either
  side: no test.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.layout import INGESTED_AT, WINDOW_END
from pipelines.contracts.model import Contract
from pipelines.config import DataCheckThresholds

_EPSILON = 1e-4  # share given to an empty bin so the PSI's logarithm stays finite


@dataclass(frozen=True)
class RowCountChange:
    previous: int
    current: int

    @property
    def relative(self) -> float:
        return (self.current - self.previous) / self.previous if self.previous else 0.0

    def breaches(self, thresholds: DataCheckThresholds) -> bool:
        if self.previous == 0:
            return False
        return -self.relative > thresholds.row_count_drop_max or self.relative > thresholds.row_count_growth_max


@dataclass(frozen=True)
class Shift:
    """How far one feature's distribution moved: PSI always, KS for numeric features."""

    feature: str
    psi: float
    ks: float | None
    previous_rows: int
    current_rows: int

    def breaches(self, thresholds: DataCheckThresholds) -> bool:
        return self.psi > thresholds.psi_max or (self.ks is not None and self.ks > thresholds.ks_max)


def rows_added(previous: pa.Table, current: pa.Table) -> pa.Table:
    """Rows of ``current`` committed after every row of ``previous``; all of ``current`` when there are none."""
    if INGESTED_AT not in previous.column_names or INGESTED_AT not in current.column_names or previous.num_rows == 0:
        return current
    newest_before = pc.max(previous[INGESTED_AT])
    added = current.filter(pc.greater(current[INGESTED_AT], newest_before))
    return added if added.num_rows else current


def _shares(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    return np.maximum(counts / total, _EPSILON) if total else counts.astype(float)


def psi_from_counts(expected: np.ndarray, actual: np.ndarray) -> float:
    e, a = _shares(np.asarray(expected, dtype=float)), _shares(np.asarray(actual, dtype=float))
    return float(np.sum((a - e) * np.log(a / e)))


def numeric_psi(expected: np.ndarray, actual: np.ndarray, bins: int) -> float:
    """PSI over quantile bins of ``expected`` (ties collapse bins; open-ended outer bins)."""
    inner = np.unique(np.quantile(expected, np.linspace(0, 1, bins + 1)[1:-1]))
    edges = np.concatenate([[-np.inf], inner, [np.inf]])
    # right-closed bins so a value equal to an edge falls where np.quantile put it
    e_counts = np.bincount(np.searchsorted(edges, expected, side="left") - 1, minlength=len(edges) - 1)
    a_counts = np.bincount(np.searchsorted(edges, actual, side="left") - 1, minlength=len(edges) - 1)
    return psi_from_counts(e_counts, a_counts)


def ks_statistic(expected: np.ndarray, actual: np.ndarray) -> float:
    """The two-sample Kolmogorov-Smirnov statistic: the largest gap between the two empirical CDFs."""
    e, a = np.sort(expected), np.sort(actual)
    points = np.concatenate([e, a])
    gap = np.abs(np.searchsorted(e, points, side="right") / len(e) - np.searchsorted(a, points, side="right") / len(a))
    return float(gap.max())


def categorical_psi(expected: pa.Array, actual: pa.Array, bins: int) -> float:
    counts = pc.value_counts(expected).to_pylist()
    counts.sort(key=lambda item: (-item["counts"], str(item["values"])))
    top = [item["values"] for item in counts[: bins - 1]]
    top_array = pa.array(top, expected.type)

    def histogram(values: pa.Array) -> np.ndarray:
        index = pc.index_in(values, value_set=top_array).fill_null(len(top)).to_numpy(zero_copy_only=False)
        return np.bincount(index, minlength=len(top) + 1)

    return psi_from_counts(histogram(expected), histogram(actual))


def _values(column: pa.ChunkedArray) -> pa.Array:
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    array = pc.drop_null(array)
    if pa.types.is_floating(array.type):
        array = array.filter(pc.invert(pc.is_nan(array)))
    return array


def feature_shift(feature: str, previous: pa.ChunkedArray, current: pa.ChunkedArray,
                  thresholds: DataCheckThresholds) -> Shift | None:
    """The shift of one feature, or ``None`` when either side has fewer than ``shift_min_rows`` values."""
    before, after = _values(previous), _values(current)
    if min(len(before), len(after)) < thresholds.shift_min_rows:
        return None
    if pa.types.is_integer(before.type) or pa.types.is_floating(before.type):
        e = before.to_numpy(zero_copy_only=False).astype(float)
        a = after.cast(before.type).to_numpy(zero_copy_only=False).astype(float)
        return Shift(feature, numeric_psi(e, a, thresholds.shift_bins), ks_statistic(e, a), len(e), len(a))
    if before.type != after.type:
        after = after.cast(before.type)
    return Shift(feature, categorical_psi(before, after, thresholds.shift_bins), None, len(before), len(after))


def complete_steps(contract: Contract, table: pa.Table, newest_end: object | None = None) -> pa.Table:
    """Rows of complete steps only: a bounded run's end-of-input flush also emits the windows that end after the last
    event (up to ``max_window - step`` later), each holding only part of a window's events; they are left out.
    ``newest_end`` is the newest ``window_end`` of the whole table version (default: of ``table``)."""
    if WINDOW_END not in table.column_names or table.num_rows == 0:
        return table
    newest = newest_end if newest_end is not None else pc.max(table[WINDOW_END]).as_py()
    if newest is None:
        return table
    last_complete = newest - (contract.max_window - contract.step)
    return table.filter(pc.less_equal(table[WINDOW_END], pa.scalar(last_complete, table[WINDOW_END].type)))


def newest_steps(table: pa.Table, steps: int) -> pa.Table:
    """Rows of the ``steps`` newest distinct ``window_end`` values of ``table``."""
    if WINDOW_END not in table.column_names or table.num_rows == 0 or steps <= 0:
        return table
    ends = pc.unique(table[WINDOW_END]).sort()
    keep = ends.slice(max(len(ends) - steps, 0))
    return table.filter(pc.is_in(table[WINDOW_END], value_set=keep))


def like_with_like(contract: Contract, previous: pa.Table, current: pa.Table) -> tuple[pa.Table, pa.Table]:
    """(previous side, current side) of the comparison: the newest version's added rows of complete steps, against
    the previous version's complete steps over the same number of steps (its newest ones), so neither side holds the
    end-of-input flush and both span the same time."""
    newest = pc.max(current[WINDOW_END]).as_py() if WINDOW_END in current.column_names and current.num_rows else None
    added = complete_steps(contract, rows_added(previous, current), newest)
    before = complete_steps(contract, previous)
    if WINDOW_END in added.column_names and added.num_rows:
        before = newest_steps(before, len(pc.unique(added[WINDOW_END])))
    return before, added


def distribution_shifts(contract: Contract, previous: pa.Table, current: pa.Table,
                        thresholds: DataCheckThresholds) -> list[Shift]:
    """Shifts of every feature present in both versions (the newest version's added rows against the previous,
    like with like: :func:`like_with_like`)."""
    previous, added = like_with_like(contract, previous, current)
    shifts = []
    for feature in contract.features:
        if feature.name in previous.column_names and feature.name in added.column_names:
            shift = feature_shift(feature.name, previous[feature.name], added[feature.name], thresholds)
            if shift is not None:
                shifts.append(shift)
    return shifts
