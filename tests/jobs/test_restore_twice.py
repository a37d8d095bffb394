"""Restore twice: a job restored from a checkpoint reads on, is killed, and the next restore continues after it.

The crash chain of ``test_crash_recovery`` kills the first restored job right after its restore, so whether that job
read any line before it died depends on the machine's load. Here the first restored job is killed from outside only
once it completed a checkpoint of its own and committed ``READ_ON`` dead letters it read itself, not after a fixed
time: on a quiet machine it read the whole input within 1.5 s, and the test then checked nothing (the next restore
had nothing left to read; now the restart sees the output account for every line and starts no job at all). Its
JVM is killed with it, as in a machine crash, so no line is read after the kill. A file reader that counts its
position from the restore instead of from the file start (Flink 2.3's ``raw`` file reader did) makes the second
restore read the input again: malformed lines dead-lettered twice, inflated windows.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from deltalake import DeltaTable

from pipelines.config import PROJECT_ROOT
from pipelines.contracts.model import Contract
from pipelines.delta import dead_letters
from tests.jobs.test_crash_recovery import DRIVER, _run, features_beside_the_reference, kill_a_first_run
from tests.jobs.test_flink_vs_reference import RELATIVE_TOLERANCE

pytestmark = pytest.mark.e2e

EVENTS = 12_000
RUN_ID = "crash"  # _run passes this run id to the driver
READ_ON = 5  # dead letters the first restored job read and committed before it is killed


def _own_checkpoints(data_dir: Path, job_id: str) -> list[Path]:
    return list((data_dir / "flink" / "runs" / RUN_ID / "checkpoints" / job_id).glob("chk-*/_metadata"))


def _dead_letters_read_since(data_dir: Path, started_at: str) -> int:
    """Dead letters in Delta that a job started at ``started_at`` read (they carry Flink's processing time)."""
    path = data_dir / "delta" / dead_letters.table_name("transactions")
    if not (path / "_delta_log").exists():
        return 0
    stamps = DeltaTable(str(path)).to_pandas(columns=["processed_at"])["processed_at"]
    return int((stamps >= pd.Timestamp(datetime.fromisoformat(started_at))).sum())


def _forensics(data_dir: Path, table: pd.DataFrame) -> str:
    """What a failure needs to say which attempt wrote each duplicate: the duplicated rows with their stamps, every
    batch (attempt, files, rows) and the checkpoints left on disk."""
    run_dir = data_dir / "flink" / "runs" / RUN_ID
    duplicated = table[table.duplicated("payload", keep=False)].sort_values("payload")
    lines = [duplicated[["payload", "processed_at", "ingested_at", "source_file"]].to_string()]
    for done in sorted((run_dir / "ledger").glob("batch-*.done.json")):
        record = json.loads(done.read_text())
        plan = json.loads(done.with_name(done.name.replace(".done.", ".plan.")).read_text())
        lines.append(f"{done.name}: attempt {record['attempt']} at {record['committed_at']}: "
                     f"{[(t['table'], t['rows'], t['skipped']) for t in record['tables']]} "
                     f"{[Path(name).name for names in plan['files'].values() for name in names]}")
    lines.append(f"checkpoints: {sorted(str(p.relative_to(run_dir)) for p in run_dir.glob('checkpoints/*/chk-*'))}")
    state = json.loads((run_dir / "ledger" / "run.json").read_text())
    lines += [f"attempt {a['number']}: job {a['job_id']}, started {a['started_at']}, restored from {a['restored_from']}"
              for a in state["attempts"]]
    return "\n".join(lines)


@pytest.fixture(scope="module")
def restored_twice(tmp_path_factory: pytest.TempPathFactory, contract: Contract) -> dict:
    first = kill_a_first_run(tmp_path_factory.mktemp("restore-twice"), contract, EVENTS, 13, "flink-running")
    path, lines, data_dir, run_json = first.events, first.lines, first.data_dir, first.run_json

    # the first restore: runs until it completed a checkpoint of its own and read on, then dies
    env = {**{k: v for k, v in os.environ.items() if k != "FP_TEST_CRASH_AT"}, "FP_DATA_DIR": str(data_dir),
           "FP_PARALLELISM": "2", "FP_CHECKPOINT_INTERVAL_MS": "300", "FP_JVM_HEAP": "512m"}  # as _run, no crash point
    second = subprocess.Popen([sys.executable, "-c", DRIVER, str(path.parent), RUN_ID], cwd=PROJECT_ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    jvm_pid = None
    try:
        deadline = time.monotonic() + 120
        read_on = False
        while time.monotonic() < deadline and second.poll() is None:
            attempts = json.loads(run_json.read_text())["attempts"]
            if len(attempts) == 2:
                jvm_pid = attempts[1]["jvm_pid"]
                if _own_checkpoints(data_dir, attempts[1]["job_id"]) and _dead_letters_read_since(
                        data_dir, attempts[1]["started_at"]) >= READ_ON:
                    read_on = True
                    break
            time.sleep(0.1)
        assert read_on, "the restored job neither took a checkpoint and read on nor kept running"
        assert second.poll() is None, "the restored job ended before it could be killed"
    finally:
        if jvm_pid is not None:  # first: the JVM must not run on without its client
            with contextlib.suppress(ProcessLookupError):
                os.kill(jvm_pid, signal.SIGKILL)
        second.send_signal(signal.SIGKILL)
        second.wait(timeout=30)

    third = _run(path.parent, data_dir, None)
    assert third.returncode == 0, third.stderr[-3000:]
    return {"lines": lines, "data_dir": data_dir, "state": json.loads(run_json.read_text()), "stdout": third.stdout}


def test_the_second_restore_resumed_where_the_first_restored_job_stopped(restored_twice: dict) -> None:
    attempts = restored_twice["state"]["attempts"]
    assert len(attempts) == 3, attempts
    assert attempts[2]["restored_from"] and f"/{attempts[1]['job_id']}/chk-" in attempts[2]["restored_from"]
    table = DeltaTable(str(restored_twice["data_dir"] / "delta" / dead_letters.table_name("transactions"))).to_pandas()
    malformed = [line for line in restored_twice["lines"] if line.startswith("not json")]
    assert sorted(table["payload"]) == sorted(malformed), (
        "malformed lines lost or dead-lettered more than once\n" + _forensics(restored_twice["data_dir"], table))
    assert restored_twice["stdout"].strip().endswith("True"), "the completed run is not balanced"
    # both restored jobs read lines of their own: the first read on before it died, the second read what was left
    second_started, third_started = (pd.Timestamp(datetime.fromisoformat(a["started_at"])) for a in attempts[1:])
    stamps = table["processed_at"]
    assert ((stamps >= second_started) & (stamps < third_started)).sum() >= READ_ON
    assert (stamps >= third_started).sum() > 0, "the second restore had nothing left to read"


def test_features_equal_the_reference_after_two_restores(restored_twice: dict, contract: Contract) -> None:
    actual, expected, keys = features_beside_the_reference(restored_twice["lines"], restored_twice["data_dir"],
                                                           contract)
    for frame in (actual, expected):
        frame["window_start"] = pd.to_datetime(frame["window_start"], utc=True).astype("datetime64[us, UTC]")
    actual = actual.sort_values(keys, ignore_index=True)
    expected = expected.sort_values(keys, ignore_index=True)
    assert (actual["window_start"] == expected["window_start"]).all()
    # every feature value, with the exactness rules of test_flink_vs_reference: a double-read window inflates
    # counts and sums, shifts averages and can change the maximum or the last value
    for feature in contract.features:
        got, want = actual[feature.name], expected[feature.name]
        assert (got.isna() == want.isna()).all(), f"{feature.name}: NULLs differ"
        present = want.notna()
        if feature.aggregation == "last":
            assert (got[present].to_numpy() == want[present].to_numpy()).all(), feature.name
        elif feature.aggregation in ("count", "count_distinct"):
            assert (got.astype("int64").to_numpy() == want.astype("int64").to_numpy()).all(), feature.name
        else:
            np.testing.assert_allclose(got[present].astype(float), want[present].astype(float),
                                       rtol=RELATIVE_TOLERANCE, atol=0, err_msg=feature.name)
    assert {f.aggregation for f in contract.features} >= {"count", "sum", "avg", "max", "last"}
