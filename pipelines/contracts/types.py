"""Which aggregation accepts which column type, and what type it produces: one table shared by checks and codegen.

``feature-check`` uses it to tell an author that ``sum`` over a string cannot work or that ``avg`` yields ``double``;
codegen uses :func:`feature_output_type` to cast Flink SQL results to the declared type. Keeping both here means the
check and the generated SQL can never disagree.
"""

from __future__ import annotations

from typing import get_args

from pipelines.contracts.model import Aggregation, ColumnType, FeatureType

NUMERIC_TYPES: frozenset[str] = frozenset({"int32", "int64", "float", "double"})
INTEGER_TYPES: frozenset[str] = frozenset({"int32", "int64"})
#: Types a join key may have: they must compare exactly and hash the same in Flink, Delta and Feast.
JOIN_KEY_TYPES: frozenset[str] = frozenset({"string", "int32", "int64"})
ALL_COLUMN_TYPES: frozenset[str] = frozenset(get_args(ColumnType))

#: Column types each aggregation accepts. ``count`` also works without a column.
AGGREGATION_INPUT_TYPES: dict[str, frozenset[str]] = {
    "count": ALL_COLUMN_TYPES,
    "sum": NUMERIC_TYPES,
    "avg": NUMERIC_TYPES,
    "min": NUMERIC_TYPES | {"string"},
    "max": NUMERIC_TYPES | {"string"},
    "count_distinct": ALL_COLUMN_TYPES - {"timestamp"},
    "last": ALL_COLUMN_TYPES - {"timestamp"},
}
assert set(AGGREGATION_INPUT_TYPES) == set(get_args(Aggregation)), "every aggregation needs its input types"

#: Feature types are the widened column types: 32-bit values are stored as 64-bit so a contract never overflows.
_WIDENED: dict[str, FeatureType] = {"int32": "int64", "int64": "int64", "float": "double", "double": "double",
                                    "string": "string", "boolean": "boolean"}


def aggregation_accepts(aggregation: Aggregation | str, column_type: ColumnType | str | None) -> bool:
    """Whether ``aggregation`` can run over a column of ``column_type`` (``None``: no column, only ``count``)."""
    if column_type is None:
        return aggregation == "count"
    return column_type in AGGREGATION_INPUT_TYPES.get(aggregation, frozenset())


def feature_output_type(aggregation: Aggregation | str, column_type: ColumnType | str | None) -> FeatureType:
    """The feature type ``aggregation`` produces over a column of ``column_type`` (``None`` for a column-less count).

    count, count_distinct -> int64; avg -> double; sum -> int64 over integers, double over floats; min, max, last ->
    the column type widened (int32 -> int64, float -> double). Raises ``ValueError`` for a combination that
    :func:`aggregation_accepts` refuses.
    """
    if not aggregation_accepts(aggregation, column_type):
        raise ValueError(f"`{aggregation}` cannot run over a column of type {column_type}")
    if aggregation in ("count", "count_distinct"):
        return "int64"
    if aggregation == "avg":
        return "double"
    assert column_type is not None  # only count runs without a column
    if aggregation == "sum":
        return "int64" if column_type in INTEGER_TYPES else "double"
    return _WIDENED[column_type]


def fallback_value_matches(feature_type: FeatureType | str, value: object) -> bool:
    """Whether a ``fallback: default`` value can stand in for a feature of ``feature_type``.

    YAML's ``true`` is a bool and Python's bool is an int, so booleans are ruled out for numbers explicitly.
    """
    if feature_type == "int64":
        return isinstance(value, int) and not isinstance(value, bool)
    if feature_type == "double":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if feature_type == "string":
        return isinstance(value, str)
    if feature_type == "boolean":
        return isinstance(value, bool)
    return False
