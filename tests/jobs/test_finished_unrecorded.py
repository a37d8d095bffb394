"""The client dies after its Flink job FINISHED and before it recorded that: the restart must not run the job again.

A finished job discards its retained checkpoints, so a restart that trusted the checkpoint folder would find none and
read the whole input again: before the fix, every malformed line was dead-lettered twice here (120 rows for 60 lines)
and the run did not balance. The crash point ``flink-ended`` SIGKILLs the pipeline right when it sees FINISHED; the
restart must commit what the finished job left, see that the run balances, and start no Flink attempt of its own.
"""

from __future__ import annotations

import json
import signal

import pandas as pd
import pytest
from deltalake import DeltaTable

from pipelines.config import PROJECT_ROOT
from pipelines.contracts.load import load_contract
from pipelines.contracts.model import Contract
from pipelines.delta import dead_letters
from tests.jobs.test_crash_recovery import RUN_ID, _assert_jvm_exits, _run, write_events_with_malformed_lines
from tests.jobs.test_flink_vs_reference import classify, reference_rows

pytestmark = pytest.mark.e2e

EVENTS = 3_000


@pytest.fixture(scope="module")
def contract() -> Contract:
    return load_contract(PROJECT_ROOT / "contracts" / "user_txn_stats.yaml").contract


@pytest.fixture(scope="module")
def ended_then_restarted(tmp_path_factory: pytest.TempPathFactory, contract: Contract) -> dict:
    root = tmp_path_factory.mktemp("finished-unrecorded")
    path, lines = write_events_with_malformed_lines(contract, root / "events", EVENTS, seed=17)
    data_dir = root / "data"
    run_json = data_dir / "flink" / "runs" / RUN_ID / "ledger" / "run.json"

    first = _run(path.parent, data_dir, "flink-ended")
    assert first.returncode == -signal.SIGKILL, first.stderr[-3000:]
    state = json.loads(run_json.read_text())
    assert state["flink_finished"] is False, "the crash point fired after the run recorded the finished job"
    _assert_jvm_exits(state["attempts"][-1]["jvm_pid"])

    second = _run(path.parent, data_dir, None)
    assert second.returncode == 0, second.stderr[-3000:]
    return {"lines": lines, "data_dir": data_dir, "state": json.loads(run_json.read_text()), "stdout": second.stdout}


def test_the_restart_started_no_second_flink_job(ended_then_restarted: dict) -> None:
    state = ended_then_restarted["state"]
    assert len(state["attempts"]) == 1, state["attempts"]
    assert state["flink_finished"] is True
    assert ended_then_restarted["stdout"].strip().endswith("True"), "the completed run is not balanced"


def test_each_malformed_line_is_dead_lettered_once(ended_then_restarted: dict) -> None:
    path = ended_then_restarted["data_dir"] / "delta" / dead_letters.table_name("transactions")
    table = DeltaTable(str(path)).to_pandas()
    malformed = [line for line in ended_then_restarted["lines"] if line.startswith("not json")]
    assert len(malformed) == EVENTS // 100
    assert sorted(table["payload"]) == sorted(malformed)


def test_the_features_equal_the_reference(ended_then_restarted: dict, contract: Contract) -> None:
    good, _ = classify(ended_then_restarted["lines"], contract)
    expected = reference_rows(good, contract)
    actual = DeltaTable(str(ended_then_restarted["data_dir"] / "delta" / contract.table_name)).to_pandas()
    keys = [*contract.entity.join_keys, "window_end"]
    for frame in (actual, expected):
        frame["window_end"] = pd.to_datetime(frame["window_end"], utc=True).astype("datetime64[us, UTC]")
    assert not actual.duplicated(keys).any()
    merged = expected[keys].merge(actual[keys], how="outer", indicator=True)
    assert (merged["_merge"] == "both").all(), merged["_merge"].value_counts().to_dict()
    counts = [f.name for f in contract.features if f.aggregation == "count"]
    assert counts, "the contract has no count feature to compare"
    joined = expected.merge(actual, on=keys, suffixes=("_want", "_got"))
    for name in counts:
        assert (joined[f"{name}_want"].astype("int64") == joined[f"{name}_got"].astype("int64")).all(), name
