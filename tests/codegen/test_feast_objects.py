"""Contract -> Feast objects: golden files for the example contracts, plus the mapping rules golden files cannot show.

``UPDATE_GOLDEN=1 .venv/bin/pytest tests/codegen/test_feast_objects.py`` rewrites the golden files after an intended
change; review the diff before committing it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pipelines.codegen.feast_objects import DELTA_PATH_PLACEHOLDER, comparable_dict, entity_name, feast_objects
from pipelines.config import PROJECT_ROOT
from pipelines.contracts.load import iter_contract_files, load_contract
from pipelines.contracts.model import Contract, Entity

GOLDEN_DIR = Path(__file__).resolve().parent.parent / "golden" / "feast"
EXAMPLES = sorted(iter_contract_files(PROJECT_ROOT / "contracts"))
DELTA_ROOT = Path("/srv/features/delta")


def _contract(name: str) -> Contract:
    return load_contract(PROJECT_ROOT / "contracts" / f"{name}.yaml").contract


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_objects_match_golden_file(path: Path) -> None:
    contract = load_contract(path).contract
    delta_path = DELTA_ROOT / contract.table_name
    actual = comparable_dict(feast_objects(contract, delta_path), delta_path)
    golden = GOLDEN_DIR / f"{contract.name}.json"
    rendered = json.dumps(actual, indent=2, sort_keys=True) + "\n"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(rendered, encoding="utf-8")
    assert golden.exists(), f"{golden} is missing: run UPDATE_GOLDEN=1 .venv/bin/pytest {__file__}"
    assert rendered == golden.read_text(encoding="utf-8"), (
        f"Feast objects of {path.name} differ from {golden.name}; if the change is intended, rewrite the golden files "
        f"with UPDATE_GOLDEN=1 .venv/bin/pytest {__file__} and review the diff")


def test_golden_files_hide_the_machine_specific_delta_path() -> None:
    text = (GOLDEN_DIR / "user_txn_stats.json").read_text(encoding="utf-8")
    assert str(DELTA_ROOT) not in text
    assert DELTA_PATH_PLACEHOLDER in text


def test_one_view_per_major_version_with_contract_tags() -> None:
    contract = _contract("user_txn_stats")
    objects = feast_objects(contract, DELTA_ROOT / contract.table_name)
    view = objects.feature_view
    assert view.name == "user_txn_stats_v1"
    assert objects.feature_service.name == "user_txn_stats_v1"
    assert view.ttl == contract.serving.ttl
    assert view.tags == {"contract": "user_txn_stats", "version": "1.0.0", "contract_hash": contract.content_hash(),
                         "owner": "risk-ml@example.com"}
    assert objects.feature_service.tags == view.tags
    assert objects.source.path == str(DELTA_ROOT / "user_txn_stats_v1")
    assert (objects.source.timestamp_field, objects.source.created_timestamp_column) == ("window_end", "ingested_at")
    bumped = contract.model_copy(update={"version": "2.0.0"})
    assert feast_objects(bumped, DELTA_ROOT / bumped.table_name).feature_view.name == "user_txn_stats_v2"


def test_feature_dtypes_follow_the_contract_types() -> None:
    from feast import types

    contract = _contract("session_clickstream")
    view = feast_objects(contract, DELTA_ROOT / contract.table_name).feature_view
    dtypes = {field.name: field.dtype for field in view.features}
    assert dtypes == {"events_10m": types.Int64, "distinct_pages_10m": types.Int64, "dwell_avg_10m": types.Float64,
                      "dwell_sum_10m": types.Int64, "max_price_seen_10m": types.Float64, "last_page_10m": types.String,
                      "events_1m": types.Int64}
    assert [(c.name, c.dtype) for c in view.entity_columns] == [("session_id", types.String)]


def test_composite_keys_get_one_entity_per_key() -> None:
    from feast import ValueType

    contract = _contract("user_txn_stats")
    composite = contract.model_copy(update={"entity": Entity(name="user", join_keys=["user_id", "channel"],
                                                             description="A card holder on one channel.")})
    objects = feast_objects(composite, DELTA_ROOT / composite.table_name)
    assert [(e.name, e.join_key, e.value_type) for e in objects.entities] == [
        ("user_user_id", "user_id", ValueType.STRING), ("user_channel", "channel", ValueType.STRING)]
    assert objects.feature_view.entities == ["user_user_id", "user_channel"]
    assert entity_name(contract, "user_id") == "user"


def test_relative_delta_path_is_rejected() -> None:
    contract = _contract("user_txn_stats")
    with pytest.raises(ValueError, match="must be absolute"):
        feast_objects(contract, Path("data/delta/user_txn_stats_v1"))
