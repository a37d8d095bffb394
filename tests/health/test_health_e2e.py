"""``feature-platform health`` end to end: the README flow passes, and real missing data makes each signal fire.

1. ``feature-platform run`` (real Flink job, Delta commits, Feast SQLite online store) on a fresh data folder, then
   ``feature-check --data`` and ``feature-platform health``: both pass on the shipped contracts, with no null-rate,
   freshness or distribution-shift finding (no empty-window NULL counted as missing, fresh events, like with like).
2. Real defects in a second data folder, computed by the same Flink job: optional input columns null in 40 % of the
   events, 60 broken lines of each kind, and feature views applied but nothing loaded online. ``health`` exits 1
   naming the null rates, the dead-letter rate and the missing rate; a stalled source (the check made an hour
   later) fails freshness.
3. Cannot tell: no table, or an online store that does not answer → exit 2, naming what could not be read.

The checks of the demo run are made ``--as-of`` a few seconds after it ended: ``session_clickstream``'s SLA says fresh
within 1 minute, and a finished bounded run really does go stale a minute later, which on a loaded machine is less than
the time these commands take to start. The stalled-source test covers the clock itself.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pipelines.config import PROJECT_ROOT, Settings
from pipelines.contracts.load import iter_contract_files, load_contract
from pipelines.contracts.model import Contract
from pipelines.feast_sync.store import apply_repo, open_store
from pipelines.health.check import check_health
from pipelines.health.signals import CANNOT_TELL, HEALTHY, UNHEALTHY
from pipelines.jobs.compute import run_contracts
from pipelines.sources.generator import SourceSpec, safe_jitter, write_events
from pipelines.testing.redis_server import free_port
from tests.demo_run import DemoRun

pytestmark = pytest.mark.e2e

BIN = Path(sys.executable).parent


def _cli(args: list[str], data_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "FP_DATA_DIR": str(data_dir), "FP_PARALLELISM": "2", **env}
    return subprocess.run(args, capture_output=True, text=True, env=environment, cwd=PROJECT_ROOT, timeout=1800,
                          check=False)


def _health(data_dir: Path, *extra: str, **env: str) -> tuple[int, dict]:
    result = _cli([str(BIN / "feature-platform"), "health", "--json", *extra], data_dir, **env)
    assert result.stdout, result.stderr[-3000:]
    return result.returncode, json.loads(result.stdout)


def _signals(report: dict) -> dict[tuple[str, str], dict]:
    return {(c["contract"], s["name"]): s for c in report["contracts"] for s in c["signals"]}


@pytest.fixture(scope="module")
def contracts() -> list[Contract]:
    return [load_contract(path).contract for path in iter_contract_files(PROJECT_ROOT / "contracts")]


@pytest.fixture(scope="module")
def demo(demo_run: DemoRun) -> Path:
    """The data folder of the suite's shared `feature-platform run` (``tests/demo_run.py``; parallelism 2, the README's
    demo size)."""
    (demo_run.data_dir.parent / "as_of.txt").write_text(demo_run.as_of)
    return demo_run.data_dir


def _as_of(demo: Path) -> list[str]:
    """``--as-of`` a few seconds after the demo run ended (see the module docstring)."""
    return ["--as-of", (demo.parent / "as_of.txt").read_text()]


def test_the_readme_flow_passes_feature_check_data_and_health(demo: Path) -> None:
    code, report = _health(demo, *_as_of(demo))
    failing = [(c["table"], s) for c in report["contracts"] for s in c["signals"] if s["verdict"] != "ok"]
    assert code == HEALTHY and failing == [], failing
    names = {s["name"] for c in report["contracts"] for s in c["signals"]}
    assert {"freshness", "event_lag", "dead_letter_rate", "missing_rate", "null_rate:amount_sum_5m"} <= names
    only = _health(demo, "--contract", "user_txn_stats", *_as_of(demo))[1]
    assert [c["contract"] for c in only["contracts"]] == ["user_txn_stats"]
    prometheus = _cli([str(BIN / "feature-platform"), "health", "--prometheus", "--contract", "user_txn_stats",
                       *_as_of(demo)], demo)
    assert prometheus.returncode == HEALTHY
    assert 'fp_health_healthy{contract="user_txn_stats",version="1"} 1.0' in prometheus.stdout

    check = _cli([str(BIN / "feature-check"), "--data", "--format", "json", *_as_of(demo), "contracts"], demo)
    assert check.returncode == 0, check.stdout[-4000:] + check.stderr[-2000:]
    findings = [f for report in json.loads(check.stdout)["contracts"] for f in report["findings"]]
    # the three signals the shipped contracts used to fail on their own data: empty-window nulls, stale demo events,
    # a distribution "shift" between two versions of one normal run
    noisy = [f for f in findings if f["rule"] in ("data-null-rate", "data-freshness", "data-distribution-shift")]
    assert noisy == [], noisy


def test_a_stalled_source_fails_freshness(demo: Path, contracts: list[Contract]) -> None:
    settings = Settings(data_dir=demo)
    report = check_health(contracts, settings, now=datetime.now(UTC) + timedelta(hours=1))
    for health in report.contracts:
        assert health.signal("freshness").verdict == "fail", health.signal("freshness")  # type: ignore[union-attr]
    assert report.exit_code() == UNHEALTHY


def test_real_missing_data_makes_each_signal_fire(tmp_path: Path, contracts: list[Contract]) -> None:
    data_dir, events = tmp_path / "data", {}
    end = datetime.now(UTC)
    for source in sorted({c.source.name for c in contracts}):
        members = [c for c in contracts if c.source.name == source]
        write_events(SourceSpec.from_contracts(members), tmp_path / "events" / source, 8_000, seed=3,
                     start=end - timedelta(hours=2), duration=timedelta(hours=2), max_jitter=safe_jitter(members),
                     entities=200, null_rate=0.4, bad_lines=60)
        events[source] = tmp_path / "events" / source
    settings = Settings(data_dir=data_dir, parallelism=2)
    summary = run_contracts(contracts, events, settings)
    assert summary.balanced  # nothing lost: the defects are in the data, not in the pipeline
    # the feature views exist in the online store, but nothing was loaded into it: every active entity is missing
    apply_repo(open_store(settings), [(c, settings.delta_table_path(c.table_name)) for c in contracts])

    code, report = _health(data_dir)
    signals = _signals(report)
    assert code == UNHEALTHY
    for name in ("null_rate:last_country_1h", "dead_letter_rate", "missing_rate"):
        assert signals[("user_txn_stats", name)]["verdict"] == "fail", signals[("user_txn_stats", name)]
    assert signals[("session_clickstream", "null_rate:dwell_sum_10m")]["verdict"] == "fail"
    # a required column cannot be null: those features stay healthy, so the verdict is per signal, not per table
    assert signals[("user_txn_stats", "null_rate:amount_avg_1h")]["verdict"] == "ok"
    assert signals[("user_txn_stats", "freshness")]["verdict"] == "ok"
    text = _cli([str(BIN / "feature-platform"), "health", "--contract", "user_txn_stats"], data_dir)
    assert text.returncode == UNHEALTHY
    assert "dead_letter_rate" in text.stderr and "> limit 1.00%" in text.stderr


def test_cannot_tell_names_what_could_not_be_read(tmp_path: Path, demo: Path) -> None:
    code, report = _health(tmp_path / "empty")
    assert code == CANNOT_TELL
    assert all("no Delta table at" in c["signals"][0]["detail"] for c in report["contracts"])

    closed = str(free_port())
    code, report = _health(demo, "--contract", "merchant_risk_profile", *_as_of(demo), FP_ONLINE_STORE="redis",
                           FP_REDIS_URL=f"127.0.0.1:{closed}")
    missing = _signals(report)[("merchant_risk_profile", "missing_rate")]
    assert code == CANNOT_TELL and missing["verdict"] == "unknown"
    assert "online store (redis) unreadable" in missing["detail"]
