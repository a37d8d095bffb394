"""Per-entity routing during a rollout: the :class:`~pipelines.serving.resolve.Router` serving workers use.

A reference without a version (``user_txn_stats:txn_count_5m``, or the contract name as a feature service) is routed
per entity by :class:`~pipelines.rollout.router.RolloutRouter` (sticky murmur3 buckets over the shared rollout store):
the candidate major for the entities in its share, the stable major for the others. A reference with a version
(``user_txn_stats_v1:...``) is never routed.

The repository holds only the candidate's contract once the new major is merged, so the stable major's view comes
from the contract kept in the rollout state (``rollout start --stable-contract``); it is added to the catalog the
first time it is needed (``on_new_view``). Without it, or with no rollout at all, the newest major serves every
entity, as before.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from pipelines.contracts.model import Contract
from pipelines.rollout.router import RolloutRouter
from pipelines.serving.catalog import ViewSpec, view_spec

log = logging.getLogger(__name__)


class RolloutViewRouter:
    """Routes each entity to the view of the major its bucket picks."""

    def __init__(self, rollouts: RolloutRouter, project: str, on_new_view: Callable[[ViewSpec], None]) -> None:
        self.rollouts, self.project, self.on_new_view = rollouts, project, on_new_view
        self._extra: dict[tuple[str, int], ViewSpec | None] = {}

    def _view(self, contract: str, major: int, versions: Sequence[ViewSpec]) -> ViewSpec | None:
        for view in versions:
            if view.major == major:
                return view
        key = (contract, major)
        if key not in self._extra:
            state = self.rollouts.state(contract)
            data = state.stable_contract if state is not None and state.stable_major == major else None
            view = view_spec(Contract.model_validate(data), self.project) if data else None
            if view is not None:
                self.on_new_view(view)
            else:
                log.warning("no contract for %s major %d: the newest major serves its entities", contract, major)
            self._extra[key] = view
        return self._extra[key]

    def shadow_view(self, contract: str, versions: Sequence[ViewSpec]) -> ViewSpec | None:
        """The candidate's view while ``contract``'s rollout is in ``shadow`` (read beside the stable major, never
        served: :mod:`pipelines.serving.shadow`); None otherwise."""
        state = self.rollouts.state(contract)
        if state is None or state.phase != "shadow":
            return None
        return self._view(contract, state.candidate_major, versions)

    def route(self, contract: str, versions: Sequence[ViewSpec], entities: dict[str, list[Any]],
              count: int) -> list[ViewSpec]:
        newest = versions[-1]
        columns = [entities.get(key) for key in newest.join_keys]
        if any(column is None for column in columns):
            return [newest] * count  # the resolver names the missing key
        majors = self.rollouts.majors(contract, list(zip(*columns, strict=True)))  # type: ignore[arg-type]
        if majors is None:
            return [newest] * count
        views: dict[int, ViewSpec] = {}
        for major in set(majors):
            views[major] = self._view(contract, major, versions) or newest
        return [views[major] for major in majors]


def served_versions_header(groups: Sequence[Any]) -> str:
    """``x-served-versions``: per routed group, ``<requested>=<major of entity 0>,<major of entity 1>,...``, groups
    separated by ``;`` (a versioned reference is listed too: its major for every entity)."""
    return ";".join(f"{g.requested}=" + ",".join(str(view.major) for view in g.views) for g in groups)
