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

from pipelines.serving.catalog import ViewSpec
from pipelines.serving.resolve import Group
from pipelines.serving.stores import Stored
from pipelines.serving.values import DECODERS, EPOCH_TEXT, decode_value, timestamp_text

PRESENT, NOT_FOUND, OUTSIDE_MAX_AGE = "PRESENT", "NOT_FOUND", "OUTSIDE_MAX_AGE"


@dataclass
class Tally:
    """What one request served, for the metrics: statuses, fallbacks by (view, feature, kind), entities by
    (contract, major), and entity outcomes by (contract, major, outcome) (:mod:`pipelines.serving.outcomes`)."""

    statuses: Counter[str] = field(default_factory=Counter)
    fallbacks: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    versions: Counter[tuple[str, int]] = field(default_factory=Counter)
    outcomes: Counter[tuple[str, int, str]] = field(default_factory=Counter)

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
    single = group.single_view
    if single is not None:
        return _serve_view(single, group.features, rows, now, tally)
    return _serve_mixed(group, rows, now, tally)


def _serve_view(view: ViewSpec, features: Sequence[str], rows: Sequence[Stored | None], now: float,
                tally: Tally) -> list[Column]:
    """The columns of ``features`` for entities all served by ``view``."""
    tally.versions[(view.contract, view.major)] += len(rows)
    ttl = view.ttl_seconds
    timestamps = [EPOCH_TEXT if s is None else timestamp_text(s.seconds, s.nanos) for s in rows]
    all_fresh = all(s is not None and not (ttl > 0 and now - s.seconds > ttl) for s in rows)
    columns = []
    for name in features:
        if all_fresh:  # the common case: every value stored and fresh, decoded column by column
            raws = [s.values.get(name) for s in rows]  # type: ignore[union-attr]
            if None not in raws:
                decode = DECODERS[view.features[name].type]
                columns.append(Column([decode(raw) for raw in raws], [PRESENT] * len(rows), timestamps))
                tally.statuses[PRESENT] += len(rows)
                continue
        column = Column([], [], timestamps)
        for stored in rows:
            _serve_value(view, name, stored, now, column, tally)
        tally.statuses.update(column.statuses)
        columns.append(column)
    return columns


def _serve_mixed(group: Group, rows: Sequence[Stored | None], now: float, tally: Tally) -> list[Column]:
    """Entities served by different views (a rollout router split them): each view's entities column by column, as
    for a single view, then the values put back in the request's entity order."""
    by_view: dict[str, tuple[ViewSpec, list[int]]] = {}
    for index, view in enumerate(group.views):
        by_view.setdefault(view.name, (view, []))[1].append(index)
    count = len(rows)
    columns = [Column([None] * count, [NOT_FOUND] * count, [EPOCH_TEXT] * count) for _ in group.features]
    for view, indexes in by_view.values():
        part = _serve_view(view, group.features, [rows[i] for i in indexes], now, tally)
        for column, served in zip(columns, part, strict=True):
            for position, index in enumerate(indexes):
                column.values[index] = served.values[position]
                column.statuses[index] = served.statuses[position]
                column.timestamps[index] = served.timestamps[position]
    return columns


def _serve_value(view: ViewSpec, name: str, stored: Stored | None, now: float, column: Column, tally: Tally) -> None:
    """Append one entity's value and status of feature ``name`` (the table in the module docstring)."""
    raw = None if stored is None else stored.values.get(name)
    stale = stored is not None and view.ttl_seconds > 0 and now - stored.seconds > view.ttl_seconds
    if raw is not None and not stale:
        column.values.append(decode_value(raw))
        column.statuses.append(PRESENT)
        return
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
