"""Step 4 of a request: enforce each view's TTL and apply the contract's degradation plan, per value.

Statuses are Feast's own names, so every Feast client parses them; the value beside a status says what was served:

==================  ==========================================  ===============================================
status              when                                        value
==================  ==========================================  ===============================================
``PRESENT``         stored and younger than the view's TTL      the stored value (null if null was stored)
``OUTSIDE_MAX_AGE`` stored but older than the TTL               ``default``: the declared value; ``last_known``:
                                                                the stored value; ``none``: null
``NOT_FOUND``       nothing stored, or the read failed or ran   ``default``: the declared value; ``last_known``
                    out of its deadline                         and ``none``: null (nothing is known)
==================  ==========================================  ===============================================

So a fallback is visible as a status other than ``PRESENT``, and a non-null value beside such a status is a fallback
value. Every non-``PRESENT`` value counts once in ``fp_serve_fallbacks_total{feature_view,feature,kind}`` (a feature
without a plan counts as ``none``), and the response carries the number in the ``X-Fallbacks`` header. A stored
null is a computed value (e.g. no country seen in the window), not a missing one: it stays ``PRESENT`` and null, as
in Feast.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pipelines.serving.resolve import Group
from pipelines.serving.stores import Stored
from pipelines.serving.values import EPOCH_TEXT, decode_value, timestamp_text

PRESENT, NOT_FOUND, OUTSIDE_MAX_AGE = "PRESENT", "NOT_FOUND", "OUTSIDE_MAX_AGE"


@dataclass
class Tally:
    """What one request served, for the metrics: statuses, fallbacks by (view, feature, kind), entities by
    (contract, major)."""

    statuses: Counter[str] = field(default_factory=Counter)
    fallbacks: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    versions: Counter[tuple[str, int]] = field(default_factory=Counter)

    @property
    def fallback_count(self) -> int:
        return sum(self.fallbacks.values())


@dataclass(frozen=True, slots=True)
class Column:
    """One output feature: a value, a status and an event timestamp per entity."""

    values: list[Any]
    statuses: list[str]
    timestamps: list[str]


def serve_group(group: Group, rows: Sequence[Stored | None], now: float, tally: Tally) -> list[Column]:
    """The output columns of ``group``'s features from the rows read for its entities (``rows[i]`` for entity i)."""
    columns = [Column([], [], []) for _ in group.features]
    for index, stored in enumerate(rows):
        view = group.views[index]
        tally.versions[(view.contract, view.major)] += 1
        stale = stored is not None and view.ttl_seconds > 0 and now - stored.seconds > view.ttl_seconds
        ts = EPOCH_TEXT if stored is None else timestamp_text(stored.seconds, stored.nanos)
        for name, column in zip(group.features, columns, strict=True):
            raw = None if stored is None else stored.values.get(name)
            column.timestamps.append(ts)
            if raw is not None and not stale:
                column.values.append(decode_value(raw))
                column.statuses.append(PRESENT)
                continue
            spec = view.features[name]
            if spec.fallback == "default":
                value = spec.default
            elif spec.fallback == "last_known" and raw is not None:
                value = decode_value(raw)
            else:
                value = None
            column.values.append(value)
            column.statuses.append(NOT_FOUND if raw is None else OUTSIDE_MAX_AGE)
            tally.fallbacks[(view.name, name, spec.fallback)] += 1
    for column in columns:
        tally.statuses.update(column.statuses)
    return columns
