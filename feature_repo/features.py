"""The Feast definitions of the platform, built from ``contracts/`` when Feast imports this module.

Nothing about a feature is written here: each contract becomes an entity (shared ones once), a Delta file source, a
feature view and a feature service, both ``<contract>_v<major>`` (see ``pipelines/codegen/feast_objects.py``).
Feast finds objects by scanning this module's globals, so each object is bound to a global named after it.

An invalid contract makes the import fail with its ``file:line:col`` message: ``feast plan``/``apply`` then stop
instead of silently dropping the contract's features.
"""

from __future__ import annotations

from typing import Any

from pipelines.config import get_settings
from pipelines.feast_sync.repo import RepoObjects, repo_objects


def _named_objects(repo: RepoObjects) -> dict[str, Any]:
    """Every object under a global name Feast will find (``entity_user``, ``feature_view_user_txn_stats_v1``, ...)."""
    named: dict[str, Any] = {f"entity_{entity.name}": entity for entity in repo.entities}
    for built in repo.contracts:
        named[f"source_{built.objects.source.name}"] = built.objects.source
        named[f"feature_view_{built.objects.feature_view.name}"] = built.objects.feature_view
        named[f"feature_service_{built.objects.feature_service.name}"] = built.objects.feature_service
    return named


REPO: RepoObjects = repo_objects(get_settings())
globals().update(_named_objects(REPO))
