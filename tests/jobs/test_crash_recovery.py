"""Crash test: SIGKILL the pipeline at every crash point, restart it, and compare Delta with the reference computation.

One shared setup: one event file and one run folder. The pipeline runs as a subprocess (``run_contracts`` with a fixed
run id) five times in a chain; each of the first four sets ``FP_TEST_CRASH_AT`` (a test-only hook, see
:func:`pipelines.delta.ledger.crash_point`) so the process SIGKILLs itself at exactly that point:

1. ``flink-running``  — Flink runs, a checkpoint is retained and at least one batch is committed;
2. ``before-commit``  — the restarted job (from the checkpoint) planned a batch, nothing of it is committed;
3. ``during-commit``  — recovering that batch, after one table committed it and before its done record;
4. ``flink-finished`` — the job (restored again) finished, its last output not yet committed;
5. no crash — the run completes.

Then: the feature table equals the pandas reference of ``test_flink_vs_reference`` row for row (no duplicate, none
missing), every malformed line is in the dead-letter table exactly once, every killed attempt's JVM exited by itself,
and the restarted jobs resumed: they were restored from a checkpoint and read fewer lines than the input (malformed
lines are dead-lettered the moment they are read, with Flink's processing time, so the dead letters stamped after a
restart count the malformed lines the restarted jobs read).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import psutil
import pytest
from deltalake import DeltaTable

from pipelines.config import PROJECT_ROOT
from pipelines.contracts.model import Contract
from pipelines.delta import dead_letters
from pipelines.sources.generator import SourceSpec, safe_jitter, write_events
from tests.jobs.test_flink_vs_reference import classify, reference_rows

pytestmark = pytest.mark.e2e

EVENTS = 6_000
MALFORMED_EVERY = 100
RUN_ID = "crash"
CHAIN = ("flink-running", "before-commit", "during-commit", "flink-finished", None)
DRIVER = """
import sys
from pathlib import Path
from pipelines.config import PROJECT_ROOT, Settings
from pipelines.contracts.load import load_contract
from pipelines.jobs.compute import run_contracts
contract = load_contract(PROJECT_ROOT / "contracts" / "user_txn_stats.yaml").contract
summary = run_contracts([contract], {"transactions": Path(sys.argv[1])}, Settings(), run_id=sys.argv[2])
print(summary.balanced)
"""


def _run(events: Path, data_dir: Path, crash_at: str | None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FP_DATA_DIR": str(data_dir), "FP_PARALLELISM": "2", "FP_CHECKPOINT_INTERVAL_MS": "300",
           "FP_JVM_HEAP": "512m"}
    env.pop("FP_TEST_CRASH_AT", None)
    if crash_at is not None:
        env["FP_TEST_CRASH_AT"] = crash_at
    return subprocess.run([sys.executable, "-c", DRIVER, str(events), RUN_ID], env=env, capture_output=True,
                          text=True, timeout=300, cwd=PROJECT_ROOT, check=False)


def _assert_jvm_exits(pid: int | None) -> None:
    if pid is None:
        return
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if "PythonGatewayServer" not in " ".join(psutil.Process(pid).cmdline()):
                return
        except psutil.NoSuchProcess:
            return
        time.sleep(0.2)
    psutil.Process(pid).kill()
    pytest.fail(f"the JVM {pid} of a killed pipeline was still running 20 s later (orphan)")


def write_events_with_malformed_lines(contract: Contract, folder: Path, events: int,
                                      seed: int) -> tuple[Path, list[str]]:
    """One file of generated events for ``contract`` in which every MALFORMED_EVERY-th line is not JSON; the file and
    its lines."""
    generated = write_events(SourceSpec.from_contracts([contract]), folder, events, seed=seed,
                             duration=timedelta(hours=2), max_jitter=safe_jitter([contract]), entities=150)
    (path,) = generated.files
    lines = path.read_text().split("\n")[:-1]
    lines = [f"not json #{i}" if i % MALFORMED_EVERY == MALFORMED_EVERY // 2 else line
             for i, line in enumerate(lines)]
    path.write_text("\n".join(lines) + "\n")
    return path, lines


@dataclass(frozen=True)
class KilledRun:
    """A run of the crash tests' driver SIGKILLed at a crash point: its input file and lines, data dir and run.json."""

    events: Path
    lines: list[str]
    data_dir: Path
    run_json: Path


def kill_a_first_run(root: Path, contract: Contract, events: int, seed: int, crash_at: str) -> KilledRun:
    """Write the events (with malformed lines) under ``root`` and run the driver until it SIGKILLs itself at
    ``crash_at``."""
    path, lines = write_events_with_malformed_lines(contract, root / "events", events, seed=seed)
    data_dir = root / "data"
    result = _run(path.parent, data_dir, crash_at)
    assert result.returncode == -signal.SIGKILL, f"expected a SIGKILL at {crash_at}\n{result.stderr[-3000:]}"
    return KilledRun(path, lines, data_dir, data_dir / "flink" / "runs" / RUN_ID / "ledger" / "run.json")


def features_beside_the_reference(lines: list[str], data_dir: Path,
                                  contract: Contract) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """The contract's Delta rows and the pandas reference of ``lines``, window ends as UTC microseconds, after
    checking that Delta holds no duplicate window and exactly the reference's windows; and the key columns."""
    good, _ = classify(lines, contract)
    expected = reference_rows(good, contract)
    actual = DeltaTable(str(data_dir / "delta" / contract.table_name)).to_pandas()
    keys = [*contract.entity.join_keys, "window_end"]
    for frame in (actual, expected):
        frame["window_end"] = pd.to_datetime(frame["window_end"], utc=True).astype("datetime64[us, UTC]")
    assert not actual.duplicated(keys).any(), f"{actual.duplicated(keys).sum()} duplicate rows in Delta"
    merged = expected[keys].merge(actual[keys], how="outer", indicator=True)
    assert (merged["_merge"] == "both").all(), merged["_merge"].value_counts().to_dict()
    return actual, expected, keys


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory, contract: Contract) -> dict:
    root = tmp_path_factory.mktemp("crash")
    path, lines = write_events_with_malformed_lines(contract, root / "events", EVENTS, seed=11)
    data_dir = root / "data"
    ledger = data_dir / "flink" / "runs" / RUN_ID / "ledger"
    outcomes = []
    started = time.perf_counter()
    for point in CHAIN:
        result = _run(path.parent, data_dir, point)
        state = json.loads((ledger / "run.json").read_text()) if (ledger / "run.json").exists() else {}
        outcomes.append((point, result, state))
        if point is not None:
            assert result.returncode == -signal.SIGKILL, (
                f"expected a SIGKILL at {point}, got {result.returncode}\n{result.stderr[-3000:]}")
            attempts = state.get("attempts", [])
            _assert_jvm_exits(attempts[-1]["jvm_pid"] if attempts else None)
        else:
            assert result.returncode == 0, result.stderr[-3000:]
    print(f"\ncrash chain: {time.perf_counter() - started:.1f}s for {len(CHAIN)} runs")
    return {"lines": lines, "data_dir": data_dir, "outcomes": outcomes, "ledger": ledger}


def test_every_crash_point_fired_and_the_last_run_completed(chain: dict) -> None:
    points = [(point, result.returncode) for point, result, _ in chain["outcomes"]]
    assert points == [(p, -signal.SIGKILL) for p in CHAIN[:-1]] + [(None, 0)]
    assert chain["outcomes"][-1][1].stdout.strip().endswith("True"), "the completed run is not balanced"


def test_delta_equals_the_reference_with_no_duplicate_and_none_missing(chain: dict, contract: Contract) -> None:
    actual, expected, keys = features_beside_the_reference(chain["lines"], chain["data_dir"], contract)
    assert len(actual) == len(expected)
    actual = actual.sort_values(keys, ignore_index=True)
    expected = expected.sort_values(keys, ignore_index=True)
    for feature in contract.features:
        got, want = actual[feature.name], expected[feature.name]
        assert (got.isna() == want.isna()).all(), feature.name
        present = want.notna()
        if feature.aggregation in ("count", "count_distinct", "last"):
            assert (got[present].astype(str).to_numpy() == want[present].astype(str).to_numpy()).all(), feature.name
        else:
            assert ((got[present] - want[present]).abs() <= 1e-9 * want[present].abs().clip(lower=1)).all()


def test_each_malformed_line_is_dead_lettered_exactly_once(chain: dict) -> None:
    table = DeltaTable(str(chain["data_dir"] / "delta" / dead_letters.table_name("transactions"))).to_pandas()
    malformed = [line for line in chain["lines"] if line.startswith("not json")]
    assert sorted(table["payload"]) == sorted(malformed)
    assert set(table["reason"]) == {"malformed_json"}


def test_restarts_resumed_from_the_checkpoint_and_the_ledger(chain: dict) -> None:
    state = chain["outcomes"][-1][2]
    attempts = state["attempts"]
    assert len(attempts) == 3, attempts  # runs 1, 2 and 4 started Flink; 3 crashed while recovering; 5 only committed
    assert attempts[0]["restored_from"] is None
    assert all(a["restored_from"] and "/chk-" in a["restored_from"] for a in attempts[1:]), attempts
    assert state["flink_finished"] is True
    # lines the restarted jobs read: the malformed ones show it exactly (dead-lettered at read time)
    table = DeltaTable(str(chain["data_dir"] / "delta" / dead_letters.table_name("transactions"))).to_pandas()
    restart = pd.Timestamp(datetime.fromisoformat(attempts[1]["started_at"]))
    read_after_restart = int((table["processed_at"] >= restart).sum())
    malformed = len(table)
    print(f"\nmalformed lines: {malformed}; read again by the restarted jobs: {read_after_restart}; source records "
          f"read per attempt (last sample): {[a['source_records_read'] for a in attempts]}")
    assert read_after_restart < malformed, "the restarted job read the input from the beginning"
    # the replayed batch was detected: some table skipped it
    records = [json.loads(p.read_text()) for p in sorted(chain["ledger"].glob("batch-*.done.json"))]
    assert any(t["skipped"] for r in records for t in r["tables"]), "no replayed batch was skipped"
