"""Two promises of the data checks: Great Expectations is imported lazily and never touches the network; and the
state estimate follows the job's shape (slices in flight, a set per `count_distinct`, the budget)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from conftest import CONTRACTS, END, feature_rows

from pipelines.config import DataCheckThresholds, Settings
from pipelines.contracts.load import LoadedContract, load_contract
from pipelines.feature_check.data import estimate_resources, run_data_checks
from pipelines.feature_check.data.resources import slices_in_flight

# Runs in a fresh interpreter: an audit hook records every connect, send, non-loopback bind and DNS lookup, and
# socket.connect itself raises, from before the data checks import anything until they return.
_OFFLINE_RUN = """
import json, socket, sys
from datetime import datetime
events = []
LOOPBACK = ("127.0.0.1", "::1", "localhost")
def hook(event, args):
    # urllib3 probes IPv6 support at import by binding a socket to ::1 port 0 and closing it: local, allowed.
    if event == "socket.bind" and isinstance(args[1], tuple) and args[1][0] in LOOPBACK:
        return
    if event.startswith(("socket.connect", "socket.send", "socket.bind", "socket.getaddrinfo", "socket.gethostby",
                         "urllib.", "http.")):
        events.append(f"{event} {args[1:]!r}")
sys.addaudithook(hook)
def refuse(*args, **kwargs):
    raise OSError("network access during data checks")
socket.socket.connect = refuse
socket.create_connection = refuse
from pipelines.config import Settings
from pipelines.contracts.load import load_contract
from pipelines.feature_check.data import run_data_checks
lazy = "great_expectations" not in sys.modules
settings = Settings(data_dir=sys.argv[1])
reports = run_data_checks([load_contract(sys.argv[2])], settings, now=datetime.fromisoformat(sys.argv[3]))
print(json.dumps({"lazy": lazy, "imported": "great_expectations" in sys.modules, "events": events,
                  "gx_analytics_env": __import__("os").environ.get("GX_ANALYTICS_ENABLED"),
                  "rules": sorted({f["rule"] for r in reports for f in r.to_dict()["findings"]})}))
"""


def test_data_checks_import_gx_lazily_and_open_no_socket(merchant: LoadedContract, settings: Settings,
                                                         write_table: Callable[..., Path], tmp_path: Path) -> None:
    rows = feature_rows(merchant.contract, null_share={"amount_max_1h": 0.5})
    write_table(merchant.contract, rows)
    script = tmp_path / "offline_run.py"
    script.write_text(_OFFLINE_RUN)
    result = subprocess.run([sys.executable, str(script), str(settings.data_dir), merchant.file,
                             (END + timedelta(minutes=1)).isoformat()], capture_output=True, text=True,
                            timeout=300, check=False, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["lazy"] and outcome["imported"]  # not loaded by the import, loaded by the run
    assert outcome["events"] == []
    assert outcome["gx_analytics_env"] == "false"
    assert "data-null-rate" in outcome["rules"]  # the run really validated something


def test_the_context_is_ephemeral_with_analytics_off() -> None:
    from pipelines.feature_check.data.gx_run import open_context

    context = open_context()
    assert type(context).__name__ == "EphemeralDataContext"
    assert context.config.analytics_enabled is False
    assert context.config.progress_bars.globally is False


def test_slices_in_flight_follow_window_slide_and_lateness() -> None:
    user = load_contract(CONTRACTS / "user_txn_stats.yaml").contract  # 1h windows every 5m, 30s lateness
    session = load_contract(CONTRACTS / "session_clickstream.yaml").contract  # 10m every 1m, 10s lateness
    merchant = load_contract(CONTRACTS / "merchant_risk_profile.yaml").contract  # tumbling 1h, 1m lateness
    assert slices_in_flight(user) == 12 + 1 + 1
    assert slices_in_flight(session) == 10 + 1 + 1
    assert slices_in_flight(merchant) == 1 + 1 + 1


def test_state_grows_with_keys_and_with_the_sets_of_count_distinct() -> None:
    contract = load_contract(CONTRACTS / "merchant_risk_profile.yaml").contract
    settings = Settings()
    small = estimate_resources(contract, cardinality=1_000, settings=settings)
    large = estimate_resources(contract, cardinality=10_000, settings=settings)
    assert large.state_bytes == 10 * small.state_bytes and small.cardinality_source == "declared"
    assert large.heap_bytes == int(large.state_bytes * settings.data_checks.heap_overhead)
    busy = estimate_resources(contract, cardinality=1_000, settings=settings,
                              distinct_values={"distinct_users_1h": 400.0})
    # 400 distinct users per key and slice: that set dominates every other aggregate
    assert busy.largest_feature == "distinct_users_1h"
    assert busy.feature_bytes["distinct_users_1h"] > 50 * busy.feature_bytes["txn_count_1h"]
    assert busy.state_bytes > 5 * small.state_bytes
    default = estimate_resources(contract, cardinality=None, settings=settings)
    assert default.active_keys == settings.data_checks.default_cardinality and default.cardinality_source == "default"


def test_a_job_above_the_budget_warns_at_the_heaviest_feature(settings: Settings,
                                                              write_table: Callable[..., Path]) -> None:
    user = load_contract(CONTRACTS / "user_txn_stats.yaml")
    write_table(user.contract, feature_rows(user.contract))
    tight = Settings(data_dir=settings.data_dir, data_checks=DataCheckThresholds(state_budget_mib=0.01))

    [report] = run_data_checks([user], tight, now=END + timedelta(minutes=1))

    [budget] = [f for f in report.findings if f.rule == "state-budget"]
    index = next(i for i, f in enumerate(user.contract.features) if f.aggregation == "count_distinct")
    assert budget.severity == "warning" and budget.yaml_path == f"features[{index}].window"
    assert budget.line == user.locate(("features", index, "window")).line
    assert "above the budget of 0 MiB" in budget.message
