"""How much Flink state a contract's job holds: an estimate from key cardinality, windows in flight and aggregates.

The generated job (:mod:`pipelines.codegen.flink_sql`) is one window aggregation per contract, grouped by the join
keys. Flink's window aggregation keeps state per key and *slice* (slices are ``step`` long and shared by the
overlapping hopping windows), so per key it holds:

* **slices in flight** = ``max_window / step`` (the slices of the window being assembled) + ``ceil(lateness / step)``
  (slices kept until the watermark passes them) + 1 (the slice being filled);
* per slice, one accumulator per feature: ``count`` 8 bytes, ``sum``/``avg``/``min``/``max`` 16 (value and count or
  a set flag; strings add their length), ``last`` the 23-character time prefix plus the value, and ``count_distinct``
  **a set**: the distinct values of the slice, each with its count and a map entry, so it grows with the data;
* plus the key itself, the slice end, a timer and the state backend's entry overhead.

``state_bytes`` is that serialized size (what a checkpoint or RocksDB holds); ``heap_bytes`` multiplies it by
``heap_overhead`` for the heap state backend, which keeps Java objects. Active keys come from Delta (the most
entities sharing one window, see :func:`pipelines.feature_check.data.metrics.active_keys`), from the caller, or from
``default_cardinality``. Distinct values per key come from the mean of the ``count_distinct`` feature in Delta when
known (scaled from the feature's window down to one slice), else ``distinct_values_per_key``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Literal

from pipelines.contracts.model import Contract, Feature

if TYPE_CHECKING:
    from pipelines.config import Settings

MIB = 1024 * 1024
STRING_BYTES = 32  # an average short string: length header plus ~24 characters
ENTRY_OVERHEAD = 64  # state-backend entry: key group, namespace (slice end), serializer headers
TIMER_BYTES = 32
_VALUE_BYTES = {"string": STRING_BYTES, "int32": 4, "int64": 8, "float": 4, "double": 8, "boolean": 1,
                "timestamp": 8}
_LAST_PREFIX = 23  # the fixed-width event-time prefix the generated `last` aggregate carries

CardinalitySource = Literal["delta", "declared", "default"]


@dataclass(frozen=True)
class ResourceEstimate:
    """The estimated state of one contract's Flink job, with the figures it was computed from."""

    contract: str
    active_keys: int
    cardinality_source: CardinalitySource
    step: timedelta
    slices_in_flight: int
    bytes_per_key_slice: int
    feature_bytes: dict[str, int] = field(default_factory=dict)
    state_bytes: int = 0
    heap_bytes: int = 0
    budget_bytes: int = 0

    @property
    def over_budget(self) -> bool:
        return self.heap_bytes > self.budget_bytes

    @property
    def largest_feature(self) -> str:
        return max(self.feature_bytes, key=lambda name: self.feature_bytes[name])

    def summary(self) -> str:
        heaviest = self.largest_feature
        return (f"~{self.heap_bytes / MIB:,.1f} MiB heap ({self.state_bytes / MIB:,.1f} MiB serialized state) for "
                f"{self.active_keys:,} active keys ({self.cardinality_source}) x {self.slices_in_flight} slices of "
                f"{_duration(self.step)} in flight x {self.bytes_per_key_slice} B per key and slice; largest "
                f"aggregate: `{heaviest}` ({self.feature_bytes[heaviest]} B per key and slice)")


def _duration(value: timedelta) -> str:
    from pipelines.contracts.durations import format_duration

    return format_duration(value)


def _column_type(contract: Contract, feature: Feature) -> str:
    return contract.source.columns[feature.column].type if feature.column else "int64"


def aggregate_bytes(contract: Contract, feature: Feature, distinct_per_slice: float) -> int:
    """Bytes of one feature's accumulator per key and slice."""
    value = _VALUE_BYTES[_column_type(contract, feature)]
    match feature.aggregation:
        case "count":
            return 8
        case "sum" | "avg" | "min" | "max":
            return 16 + (value if value == STRING_BYTES else 0)
        case "last":
            return _LAST_PREFIX + max(value, 8) + 16
        case "count_distinct":
            return int(math.ceil(max(distinct_per_slice, 1.0)) * (value + 8 + 32))  # value, count, map entry
    raise ValueError(f"no size for aggregation {feature.aggregation!r}")


def slices_in_flight(contract: Contract) -> int:
    step = contract.step
    return math.ceil(contract.max_window / step) + math.ceil(contract.source.allowed_lateness / step) + 1


def estimate_resources(contract: Contract, *, cardinality: int | None, settings: Settings,
                       distinct_values: Mapping[str, float] | None = None,
                       cardinality_source: CardinalitySource | None = None) -> ResourceEstimate:
    """Estimate the Flink state of ``contract``'s job.

    ``cardinality``: keys holding state at once (``None``: ``settings.data_checks.default_cardinality``).
    ``distinct_values``: mean value of each ``count_distinct`` feature as measured in Delta (distinct values per key
    over the feature's window); missing ones use ``settings.data_checks.distinct_values_per_key`` per slice.
    """
    thresholds = settings.data_checks
    keys = cardinality if cardinality is not None else thresholds.default_cardinality
    source: CardinalitySource = cardinality_source or ("declared" if cardinality is not None else "default")
    measured = distinct_values or {}
    step = contract.step
    per_feature = {}
    for feature in contract.features:
        if feature.name in measured:
            per_slice = measured[feature.name] * min(1.0, step / feature.window.size)
        else:
            per_slice = float(thresholds.distinct_values_per_key)
        per_feature[feature.name] = aggregate_bytes(contract, feature, per_slice)
    key_bytes = sum(_VALUE_BYTES[contract.source.columns[k].type] for k in contract.entity.join_keys)
    per_key_slice = key_bytes + 8 + TIMER_BYTES + ENTRY_OVERHEAD + sum(per_feature.values())
    slices = slices_in_flight(contract)
    state = keys * slices * per_key_slice
    return ResourceEstimate(contract=contract.name, active_keys=keys, cardinality_source=source, step=step,
                            slices_in_flight=slices, bytes_per_key_slice=per_key_slice, feature_bytes=per_feature,
                            state_bytes=state, heap_bytes=int(state * thresholds.heap_overhead),
                            budget_bytes=int(thresholds.state_budget_mib * MIB))
