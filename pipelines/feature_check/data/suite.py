"""Contract → the expectations its Delta table must meet, as plain specs (no Great Expectations import here).

Each :class:`ExpectationSpec` names a GX 1.x expectation class, its arguments, the rule id it reports under and the
contract setting it comes from, so a failure points at that setting's line. :mod:`pipelines.feature_check.data.gx_run` turns the
specs into a suite and validates it. What the suite says about a contract's table:

* ``data-schema``: exactly the columns of :func:`pipelines.delta.schema.delta_schema`, in order, each of its type
  (pandas dtype names of the frame :mod:`~pipelines.feature_check.data.gx_run` builds: nullable ``Int64Dtype``,
  ``BooleanDtype``, ``StringDtype``, ``float64``, and ``datetime64[us]`` for the UTC timestamps).
* ``data-null-key``: join keys, ``window_start``, ``window_end`` and ``ingested_at`` are never null.
* ``data-null-rate``: each feature is non-null in at least ``1 - null_rate_max`` of the rows whose feature window
  held an event (``mostly``, with a ``row_condition`` on the contract's count over the same window when the feature
  is NULL over an empty window: :mod:`pipelines.health.activity`), with the feature's own limit from
  ``sla.features`` when it has one.
* ``data-value-range``: what the aggregation implies: counts are ``>= 0``; for a ``min`` and a ``max`` of the same
  column and window, ``max >= min`` in every row where both are set.
* ``data-window-shape``: ``window_end > window_start``.
* ``data-unique-window``: one row per entity and window: the join keys plus ``window_end`` are unique.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from pipelines.layout import INGESTED_AT, WINDOW_END, WINDOW_START
from pipelines.contracts.load import YamlPath
from pipelines.contracts.model import Contract, Feature
from pipelines.health.activity import activity_of

#: Contract types → the pandas dtype name GX compares against (the frame is built with nullable extension dtypes).
PANDAS_TYPES: dict[str, str] = {
    "string": "StringDtype",
    "int32": "Int32Dtype",
    "int64": "Int64Dtype",
    "float": "float32",
    "double": "float64",
    "boolean": "BooleanDtype",
    "timestamp": "datetime64[us]",
}


@dataclass(frozen=True)
class ExpectationSpec:
    """One expectation: GX class name and arguments, the rule it reports, and where in the contract it comes from.

    ``yaml_path`` is ``None`` for expectations about platform columns that no contract setting governs.
    """

    expectation: str
    kwargs: dict[str, Any]
    rule: str
    yaml_path: YamlPath | None
    column: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def null_rate_limit(contract: Contract, feature: str) -> tuple[float, YamlPath]:
    """The null-rate limit of ``feature`` and the setting it comes from (the feature's override wins)."""
    override = contract.sla.features.get(feature)
    if override is not None and override.null_rate_max is not None:
        return override.null_rate_max, ("sla", "features", feature, "null_rate_max")
    return contract.sla.null_rate_max, ("sla", "null_rate_max")


def expected_columns(contract: Contract, pending: Collection[str] = ()) -> list[tuple[str, str]]:
    """(column, contract type) in the Delta layout's order, without the ``pending`` features (added by the change
    under review, so not in the table yet)."""
    keys = [(key, contract.source.columns[key].type) for key in contract.entity.join_keys]
    windows = [(WINDOW_START, "timestamp"), (WINDOW_END, "timestamp")]
    features = [(f.name, f.type) for f in contract.features if f.name not in pending]
    return [*keys, *windows, *features, (INGESTED_AT, "timestamp")]


def _type_path(contract: Contract, column: str) -> YamlPath | None:
    if column in contract.entity.join_keys:
        return ("source", "schema", column)
    for index, feature in enumerate(contract.features):
        if feature.name == column:
            return ("features", index, "type")
    return None


def _min_max_pairs(contract: Contract) -> list[tuple[int, Feature, Feature]]:
    """(index of the max feature, max, min) for a ``min`` and a ``max`` over the same numeric column and window."""
    pairs = []
    for index, high in enumerate(contract.features):
        if high.aggregation != "max" or high.type == "string":
            continue
        for low in contract.features:
            if low.aggregation == "min" and low.column == high.column and low.window == high.window:
                pairs.append((index, high, low))
    return pairs


def build_specs(contract: Contract, present: Collection[str], pending: Collection[str] = ()) -> list[ExpectationSpec]:
    """The expectations for ``contract``'s table; column-level ones only for the ``present`` columns (a missing
    column is reported once, by the column-list expectation). ``pending`` features are left out entirely."""
    columns = expected_columns(contract, pending)
    specs = [ExpectationSpec("ExpectTableColumnsToMatchOrderedList", {"column_list": [name for name, _ in columns]},
                             "data-schema", ("features",))]
    for name, kind in columns:
        if name in present:
            specs.append(ExpectationSpec("ExpectColumnValuesToBeInTypeList",
                                         {"column": name, "type_list": [PANDAS_TYPES[kind]]}, "data-schema",
                                         _type_path(contract, name), name, {"type": kind}))
    never_null = [*contract.entity.join_keys, WINDOW_START, WINDOW_END, INGESTED_AT]
    specs += [ExpectationSpec("ExpectColumnValuesToNotBeNull", {"column": name}, "data-null-key",
                              ("entity", "join_keys") if name in contract.entity.join_keys else None, name)
              for name in never_null if name in present]
    for index, feature in enumerate(contract.features):
        if feature.name not in present:
            continue
        limit, path = null_rate_limit(contract, feature.name)
        if limit < 1.0:
            kwargs: dict[str, Any] = {"column": feature.name, "mostly": 1.0 - limit}
            activity = activity_of(contract, feature)
            if activity.count_column is not None and activity.count_column in present:
                # only rows whose feature window held an event (pipelines.health.activity): an empty window's NULL
                # is not missing data
                kwargs |= {"row_condition": f"{activity.count_column} > 0", "condition_parser": "pandas"}
            specs.append(ExpectationSpec("ExpectColumnValuesToNotBeNull", kwargs, "data-null-rate", path,
                                         feature.name, {"limit": limit}))
        if feature.aggregation in ("count", "count_distinct"):
            specs.append(ExpectationSpec("ExpectColumnValuesToBeBetween", {"column": feature.name, "min_value": 0},
                                         "data-value-range", ("features", index, "aggregation"), feature.name,
                                         {"why": f"a {feature.aggregation} cannot be negative"}))
    for index, high, low in _min_max_pairs(contract):
        if high.name in present and low.name in present:
            specs.append(ExpectationSpec(
                "ExpectColumnPairValuesAToBeGreaterThanB",
                {"column_A": high.name, "column_B": low.name, "or_equal": True,
                 "ignore_row_if": "either_value_is_missing"},
                "data-value-range", ("features", index, "aggregation"), high.name,
                {"why": f"`{high.name}` (max) must be >= `{low.name}` (min) of the same column and window"}))
    if WINDOW_START in present and WINDOW_END in present:
        specs.append(ExpectationSpec("ExpectColumnPairValuesAToBeGreaterThanB",
                                     {"column_A": WINDOW_END, "column_B": WINDOW_START, "or_equal": False},
                                     "data-window-shape", None, WINDOW_END,
                                     {"why": "window_end must be after window_start"}))
    unique = [*contract.entity.join_keys, WINDOW_END]
    if all(name in present for name in unique):
        specs.append(ExpectationSpec("ExpectCompoundColumnsToBeUnique", {"column_list": unique}, "data-unique-window",
                                     ("entity", "join_keys")))
    return specs
