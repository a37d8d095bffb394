"""Contracts -> one Feast project: shared entities once, clashes refused, invalid contracts never skipped, and the
``feature_repo/`` definitions Feast imports."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

from pipelines.config import PROJECT_ROOT, Settings
from pipelines.contracts.load import ContractLoadError, iter_contract_files, load_contract
from pipelines.contracts.model import Column, Entity
from pipelines.feast_sync.repo import RepoDefinitionError, build_repo_objects, repo_objects

DELTA = Path("/srv/delta")
EXAMPLES = [load_contract(path).contract for path in iter_contract_files(PROJECT_ROOT / "contracts")]


def _with_entity(contract, entity: Entity, name: str):
    return contract.model_copy(update={"name": name, "entity": entity})


def test_every_contract_becomes_a_view_and_a_service() -> None:
    repo = build_repo_objects([(c, DELTA / c.table_name) for c in EXAMPLES])
    assert sorted(c.objects.feature_view.name for c in repo.contracts) == sorted(c.table_name for c in EXAMPLES)
    assert sorted(e.name for e in repo.entities) == sorted(c.entity.name for c in EXAMPLES)
    assert len(repo.all()) == len(repo.entities) + 3 * len(EXAMPLES)


def test_shared_entity_is_defined_once() -> None:
    user = next(c for c in EXAMPLES if c.name == "user_txn_stats")
    twin = user.model_copy(update={"name": "user_txn_twin"})
    repo = build_repo_objects([(user, DELTA / user.table_name), (twin, DELTA / twin.table_name)])
    assert [e.name for e in repo.entities] == ["user"]
    assert [c.objects.feature_view.entities for c in repo.contracts] == [["user"], ["user"]]


def test_shared_entity_with_another_key_type_is_refused() -> None:
    user = next(c for c in EXAMPLES if c.name == "user_txn_stats")
    columns = {**user.source.columns, "user_id": Column(type="int64")}
    other = user.model_copy(update={"name": "user_numeric", "source": user.source.model_copy(
        update={"columns": columns})})
    with pytest.raises(RepoDefinitionError, match="entity 'user' is user_id: STRING .* INT64 in user_numeric"):
        build_repo_objects([(user, DELTA / user.table_name), (other, DELTA / other.table_name)])


def test_two_files_for_one_view_are_refused() -> None:
    user = next(c for c in EXAMPLES if c.name == "user_txn_stats")
    minor = user.model_copy(update={"version": "1.1.0"})
    with pytest.raises(RepoDefinitionError, match="user_txn_stats v1.0.0 and user_txn_stats v1.1.0 both define"):
        build_repo_objects([(user, DELTA / "a"), (minor, DELTA / "b")])


def test_invalid_contract_raises_with_its_location(tmp_path: Path) -> None:
    contracts = tmp_path / "contracts"
    contracts.mkdir()
    shutil.copy(PROJECT_ROOT / "contracts" / "user_txn_stats.yaml", contracts)
    broken = contracts / "broken.yaml"
    broken.write_text((contracts / "user_txn_stats.yaml").read_text().replace("version: 1.0.0", "version: one"))
    with pytest.raises(ContractLoadError, match=r"broken\.yaml:3:10: error \[invalid-value\] version"):
        repo_objects(Settings(data_dir=tmp_path / "data", contracts_dir=contracts))


def test_feature_repo_defines_one_view_and_service_per_contract() -> None:
    from feast import Entity as FeastEntity
    from feast import FeatureService, FeatureView

    definitions = PROJECT_ROOT / "feature_repo" / "features.py"
    spec = importlib.util.spec_from_file_location("feature_repo_features", definitions)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    found = [getattr(module, name) for name in dir(module)]  # what Feast's parse_repo scans
    views = [o for o in found if isinstance(o, FeatureView)]
    services = [o for o in found if isinstance(o, FeatureService)]
    entities = [o for o in found if isinstance(o, FeastEntity)]
    assert sorted(v.name for v in views) == sorted(c.table_name for c in EXAMPLES)
    assert sorted(s.name for s in services) == sorted(c.table_name for c in EXAMPLES)
    assert sorted(e.name for e in entities) == sorted({c.entity.name for c in EXAMPLES})
    for view in views:
        assert Path(view.batch_source.path).is_absolute()
