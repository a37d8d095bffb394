"""The client dies after its Flink job FINISHED and before it recorded that: the restart must not run the job again.

A finished job discards its retained checkpoints, so a restart that trusted the checkpoint folder would find none and
read the whole input again: before the fix, every malformed line was dead-lettered twice here (120 rows for 60 lines)
and the run did not balance. The crash point ``flink-ended`` SIGKILLs the pipeline right when it sees FINISHED; the
restart must commit what the finished job left, see that the run balances, and start no Flink attempt of its own.
"""

from __future__ import annotations

import json

import pytest
from deltalake import DeltaTable

from pipelines.contracts.model import Contract
from pipelines.delta import dead_letters
from tests.jobs.test_crash_recovery import _assert_jvm_exits, _run, features_beside_the_reference, kill_a_first_run

pytestmark = pytest.mark.e2e

EVENTS = 3_000


@pytest.fixture(scope="module")
def ended_then_restarted(tmp_path_factory: pytest.TempPathFactory, contract: Contract) -> dict:
    first = kill_a_first_run(tmp_path_factory.mktemp("finished-unrecorded"), contract, EVENTS, 17, "flink-ended")
    state = json.loads(first.run_json.read_text())
    assert state["flink_finished"] is False, "the crash point fired after the run recorded the finished job"
    _assert_jvm_exits(state["attempts"][-1]["jvm_pid"])

    second = _run(first.events.parent, first.data_dir, None)
    assert second.returncode == 0, second.stderr[-3000:]
    return {"lines": first.lines, "data_dir": first.data_dir, "state": json.loads(first.run_json.read_text()),
            "stdout": second.stdout}


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
    actual, expected, keys = features_beside_the_reference(ended_then_restarted["lines"],
                                                           ended_then_restarted["data_dir"], contract)
    counts = [f.name for f in contract.features if f.aggregation == "count"]
    assert counts, "the contract has no count feature to compare"
    joined = expected.merge(actual, on=keys, suffixes=("_want", "_got"))
    for name in counts:
        assert (joined[f"{name}_want"].astype("int64") == joined[f"{name}_got"].astype("int64")).all(), name
