"""The main job end to end, as a user runs it: `feature-platform run` in a subprocess on a fresh data folder.

Checks that each step really happened (lines balanced, Delta tables written with the contract's properties, Feast
applied and loaded) and that the online values it prints are exactly the newest Delta row of each sampled entity.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from deltalake import DeltaTable

from pipelines.contracts.load import iter_contract_files, load_contract
from tests.demo_run import DemoRun

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def test_run_command_end_to_end(demo_run: DemoRun) -> None:
    """The shared run of the main job (``tests/demo_run.py``: `feature-platform run` in a subprocess, parallelism 2)."""
    summary, data_dir = demo_run.summary, demo_run.data_dir

    contracts = [load_contract(path).contract for path in iter_contract_files(ROOT / "contracts")]
    assert summary["ok"] is True
    assert set(summary["rows_written"]) == {c.table_name for c in contracts}
    for contract in contracts:
        name = contract.table_name
        assert summary["events_read"][name] == 4000
        table = DeltaTable(str(data_dir / "delta" / name))
        rows = table.to_pandas()
        assert len(rows) == summary["rows_written"][name] > 0
        assert table.metadata().configuration.get("feature_platform.contract.hash") == contract.content_hash()
        entities = rows[list(contract.entity.join_keys)].drop_duplicates()
        assert summary["online_entities_loaded"][name] == len(entities)

        online = summary["online_values"][name]
        key = contract.entity.join_keys[0]
        assert online and len(online[key]) == 3
        newest = rows.sort_values("window_end").groupby(key).tail(1).set_index(key)
        for index, entity in enumerate(online[key]):
            for feature in contract.features:
                expected = newest.loc[entity, feature.name]
                got = online[feature.name][index]
                if expected is None or (isinstance(expected, float) and math.isnan(expected)):
                    assert got is None, (name, entity, feature.name)
                elif isinstance(got, float):
                    assert got == pytest.approx(float(expected)), (name, entity, feature.name)
                else:
                    assert got == expected, (name, entity, feature.name)
    assert summary["peak_memory_mib"]["jvm"] > 0
