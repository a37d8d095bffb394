"""All Feast objects of the platform, built from every contract: what ``feature_repo/`` defines and what we apply.

One place decides how several contracts become one Feast project, so the Feast CLI (via ``feature_repo/features.py``)
and our own code (:func:`pipelines.feast_sync.store.apply_repo`) can never disagree:

* every contract is loaded with the one loader every command uses (:mod:`pipelines.contracts.valid`: every semantic
  rule checked); an invalid one raises with its ``file:line`` findings (a silently skipped contract would silently
  stop being served);
* entities used by several contracts (same name) are defined once, and must agree on join key and type;
* two contracts may not claim the same feature view (``<name>_v<major>``) or feature service (``<name>``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.codegen.feast_objects import FeastObjects, feast_objects
from pipelines.config import Settings
from pipelines.contracts.load import LoadedContract
from pipelines.contracts.model import Contract
from pipelines.contracts.valid import load_valid_loaded
from pipelines.errors import PlatformError, Terminal

if TYPE_CHECKING:
    from feast import Entity


class RepoDefinitionError(PlatformError, Terminal):
    """The contracts cannot be combined into one Feast project (a name clash or disagreeing shared entities)."""


@dataclass(frozen=True)
class ContractObjects:
    """One contract, the Delta table it is served from, and its Feast objects."""

    contract: Contract
    delta_table_path: Path
    objects: FeastObjects


@dataclass(frozen=True)
class RepoObjects:
    """The Feast objects of every contract, with shared entities defined once."""

    contracts: tuple[ContractObjects, ...]
    entities: tuple[Entity, ...]

    def all(self) -> list[Any]:
        """Every object, in an order ``FeatureStore.apply`` accepts."""
        return [
            *self.entities,
            *(c.objects.source for c in self.contracts),
            *(c.objects.feature_view for c in self.contracts),
            *(c.objects.feature_service for c in self.contracts),
        ]


def load_contracts(contracts_dir: Path) -> list[LoadedContract]:
    """Every contract under ``contracts_dir``; any error raises ``ContractLoadError`` with every finding."""
    return load_valid_loaded(contracts_dir)


def build_repo_objects(contracts_with_paths: Iterable[tuple[Contract, Path]]) -> RepoObjects:
    """Feast objects for each ``(contract, absolute Delta table path)``, checked to fit in one Feast project."""
    built: list[ContractObjects] = []
    entities: dict[str, Entity] = {}
    owners: dict[str, str] = {}  # object name -> contract that defined it, for clash messages
    for contract, path in contracts_with_paths:
        objects = feast_objects(contract, path)
        for name in (objects.feature_view.name, f"service:{objects.feature_service.name}"):
            if name in owners:
                raise RepoDefinitionError(
                    f"contracts {owners[name]} and {contract.name} v{contract.version} both define Feast object "
                    f"{name!r}: keep one file per contract major version in the contracts folder")
            owners[name] = f"{contract.name} v{contract.version}"
        for entity in objects.entities:
            known = entities.setdefault(entity.name, entity)
            if (known.join_key, known.value_type) != (entity.join_key, entity.value_type):
                raise RepoDefinitionError(
                    f"entity {entity.name!r} is {known.join_key}: {known.value_type.name} in one contract but "
                    f"{entity.join_key}: {entity.value_type.name} in {contract.name}: a shared entity must use the "
                    f"same join key and type everywhere (or rename it)")
        built.append(ContractObjects(contract, Path(path), objects))
    return RepoObjects(tuple(built), tuple(entities.values()))


def contracts_with_delta_paths(settings: Settings) -> list[tuple[Contract, Path]]:
    """Every contract in ``settings.contracts_dir`` with the absolute path of its Delta table."""
    return [(loaded.contract, settings.delta_table_path(loaded.contract.table_name))
            for loaded in load_contracts(settings.contracts_dir)]


def repo_objects(settings: Settings) -> RepoObjects:
    """The whole Feast project as ``settings`` describes it (contracts folder and data folder)."""
    return build_repo_objects(contracts_with_delta_paths(settings))
