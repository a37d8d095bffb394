"""Step 2 of a request: which view serves each requested feature, for each entity.

A reference names a view and a feature: ``user_txn_stats_v1:txn_count_5m`` (a view, i.e. one contract major, as in
Feast), or ``user_txn_stats:txn_count_5m`` (a contract without a version). A feature service (ours are named like
their view) stands for every feature of its view in the contract's order.

The seam for rollouts: a reference without a version is handed to a :class:`Router`, which picks, per entity, the
major version that serves it (during a canary, N or N+1 by a stable hash of the entity key). The default
:class:`NewestMajorRouter` picks the newest major the catalog holds for every entity. Everything after this step
reads per (view, entities), so a router that splits entities needs nothing else changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pipelines.serving.catalog import Catalog, ViewSpec
from pipelines.serving.request import BadRequest, OnlineRequest


class Router(Protocol):
    """Picks the view (major version) of ``contract`` serving each entity; returns one view per entity."""

    def route(self, contract: str, versions: Sequence[ViewSpec], entities: dict[str, list[Any]],
              count: int) -> list[ViewSpec]: ...


class NewestMajorRouter:
    """Every entity is served by the newest major version of the contract (no rollout in progress)."""

    def route(self, contract: str, versions: Sequence[ViewSpec], entities: dict[str, list[Any]],
              count: int) -> list[ViewSpec]:
        return [versions[-1]] * count


@dataclass(frozen=True)
class Group:
    """Features requested under one view name (``requested``), and the view serving each entity."""

    requested: str
    features: tuple[str, ...]
    views: list[ViewSpec]

    @property
    def single_view(self) -> ViewSpec | None:
        """The view serving every entity, or None when the router split them."""
        first = self.views[0]
        return first if all(view is first for view in self.views) else None


@dataclass(frozen=True)
class Plan:
    """What to read and how to name it: entity columns echoed first, then one output column per group feature."""

    groups: list[Group]
    output_names: list[str]
    entity_columns: list[str]


_KEY_PYTHON_TYPES = {"string": str, "int64": int, "int32": int}
_INT_BOUNDS = {"int64": (-(2**63), 2**63 - 1), "int32": (-(2**31), 2**31 - 1)}


def resolve(request: OnlineRequest, catalog: Catalog, router: Router) -> Plan:
    """The :class:`Plan` of ``request``; raises :class:`BadRequest` naming an unknown view, feature, service or a
    missing or mistyped join key."""
    wanted = _requested(request, catalog)
    groups = []
    for requested, features in wanted.items():
        if requested in catalog.views:
            views = [catalog.views[requested]] * request.entity_count
        else:
            views = router.route(requested, catalog.by_contract[requested], request.entities, request.entity_count)
        for view in {id(v): v for v in views}.values():
            for feature in features:
                if feature not in view.features:
                    raise BadRequest(f"unknown feature {requested}:{feature} (view {view.name} has "
                                     f"{', '.join(view.feature_order)})")
            _check_keys(view, request.entities)
        groups.append(Group(requested, tuple(features), views))
    names = [f"{g.requested}__{f}" if request.full_feature_names else f for g in groups for f in g.features]
    if len(set(names)) != len(names):
        duplicate = next(n for n in names if names.count(n) > 1)
        raise BadRequest(f"feature name {duplicate!r} is requested from two views; set full_feature_names: true")
    return Plan(groups, names, list(request.entities))


def _requested(request: OnlineRequest, catalog: Catalog) -> dict[str, list[str]]:
    """Requested view (or contract) name -> features, in request order, without repeats."""
    if request.feature_service is not None:
        view = catalog.views.get(request.feature_service)
        if view is None:
            raise BadRequest(f"unknown feature service {request.feature_service!r}; known: "
                             f"{', '.join(sorted(catalog.views)) or 'none'}")
        return {view.name: list(view.feature_order)}
    wanted: dict[str, list[str]] = {}
    for ref in request.features:
        view_name, sep, feature = ref.partition(":")
        if not sep or not view_name or not feature:
            raise BadRequest(f"feature reference {ref!r} must look like \"view:feature\"")
        if view_name not in catalog.views and view_name not in catalog.by_contract:
            raise BadRequest(f"unknown feature view {view_name!r} (in {ref!r}); known: "
                             f"{', '.join(sorted(catalog.views)) or 'none'}")
        features = wanted.setdefault(view_name, [])
        if feature not in features:
            features.append(feature)
    return wanted


def _check_keys(view: ViewSpec, entities: dict[str, list[Any]]) -> None:
    for key, key_type in zip(view.join_keys, view.key_types, strict=True):
        column = entities.get(key)
        if column is None:
            raise BadRequest(f"entities lack join key {key!r} of view {view.name}")
        python_type = _KEY_PYTHON_TYPES[key_type]
        for index, value in enumerate(column):
            if type(value) is not python_type:  # bool is an int subclass: refused too
                raise BadRequest(f"entities[{key!r}][{index}] must be a {key_type}, got {value!r}")
            if key_type in _INT_BOUNDS:
                low, high = _INT_BOUNDS[key_type]
                if not low <= value <= high:
                    raise BadRequest(f"entities[{key!r}][{index}] = {value} is out of {key_type} range")
