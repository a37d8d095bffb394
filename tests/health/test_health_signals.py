"""Health signals on small hand-built inputs (no Flink, no Feast): each signal fires exactly when its limit is
crossed, the null rate counts only rows whose feature window held an event, and the exit code follows the verdicts.

The end-to-end test (``test_health_e2e.py``) runs the real job, store and CLI."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from pipelines.config import HealthDefaults
from pipelines.contracts.model import Contract
from pipelines.delta.ledger import BatchRecord, Ledger, TableCommit
from pipelines.health.activity import activity_of, null_rate
from pipelines.health.dead_letter_signal import dead_letter_signal, newest_run_records
from pipelines.health.limits import HealthLimits
from pipelines.health.online_signal import covered
from pipelines.health.serve_signals import p99_from_buckets, parse_serve_metrics
from pipelines.health.signals import CANNOT_TELL, HEALTHY, UNHEALTHY, ContractHealth, HealthReport, Signal
from pipelines.health.table_signals import freshness_signals, newest_complete_step, null_rate_signals

END = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TS = pa.timestamp("us", tz="UTC")


def user_rows(contract: Contract, *, steps: int, entities: int, counts: list[int], nulls: dict[str, int],
              committed: datetime) -> pa.Table:
    """Rows of user_txn_stats ending at END, one per entity and step; ``counts`` gives txn_count_5m per entity
    (the same in every step); the first ``nulls[f]`` rows of every step have ``f`` null."""
    data: dict[str, list] = {name: [] for name in ("user_id", "window_start", "window_end")}
    for feature in contract.features:
        data[feature.name] = []
    for step in range(steps):
        end = END - contract.step * step
        for entity in range(entities):
            data["user_id"].append(f"u{entity}")
            data["window_start"].append(end - contract.max_window)
            data["window_end"].append(end)
            for feature in contract.features:
                if entity < nulls.get(feature.name, 0):
                    value = None
                elif feature.name == "txn_count_5m":
                    value = counts[entity]
                elif feature.type == "int64":
                    value = 3
                elif feature.type == "string":
                    value = "FR"
                else:
                    value = 12.5
                data[feature.name].append(value)
    table = pa.table(data)
    table = table.set_column(1, "window_start", table["window_start"].cast(TS))
    table = table.set_column(2, "window_end", table["window_end"].cast(TS))
    return table.append_column("ingested_at", pa.array([committed] * table.num_rows, TS))


@pytest.fixture
def users(project_contract: Callable[[str], Contract]) -> Contract:
    return project_contract("user_txn_stats")


@pytest.fixture
def limits(users: Contract) -> HealthLimits:
    return HealthLimits.of(users, HealthDefaults())


def test_limits_come_from_the_contract(users: Contract, limits: HealthLimits) -> None:
    assert limits.freshness_s == 120  # sla.freshness: 2m
    assert limits.event_lag_s == 120 + 300 + 30  # + step 5m + allowed_lateness 30s
    assert limits.null_rate["last_country_1h"] == 0.05 and limits.null_rate["amount_avg_1h"] == 0.005
    assert (limits.missing_rate, limits.error_rate, limits.latency_p99_s) == (0.003, 0.01, None)
    assert limits.dead_letter_rate == HealthDefaults().dead_letter_rate_max


def test_an_empty_window_is_not_missing_data(project_contract: Callable[[str], Contract]) -> None:
    """A feature that is NULL over an empty window is measured only over the rows whose window held an event."""
    base = project_contract("user_txn_stats")
    data = base.model_dump(mode="json", by_alias=True)
    data["features"].append({"name": "amount_avg_5m", "aggregation": "avg", "column": "amount", "window": "5m",
                             "type": "double", "description": "Average amount in the last 5 minutes."})
    contract = Contract.model_validate(data)
    feature = contract.features[-1]
    assert activity_of(contract, feature).count_column == "txn_count_5m"
    table = pa.table({"txn_count_5m": [0, 0, 3, 2, 1], "amount_avg_5m": [None, None, 4.0, None, 2.0]})
    rate = null_rate(contract, feature, table)
    assert (rate.nulls, rate.rows) == (1, 3)  # the two empty windows do not count; the third null does
    # a feature over the largest window: every row counts
    assert activity_of(contract, contract.features[3]).count_column is None


def test_null_rate_signal_fires_over_the_newest_complete_step(users: Contract, limits: HealthLimits) -> None:
    table = user_rows(users, steps=15, entities=100, counts=[1] * 100, nulls={"amount_avg_1h": 1},
                      committed=END)
    end, step_rows = newest_complete_step(users, table)
    assert end == END - (users.max_window - users.step)  # the end-of-input flush windows are left out
    assert step_rows.num_rows == 100
    by_name = {s.name: s for s in null_rate_signals(users, table, limits)}
    assert by_name["null_rate:amount_avg_1h"].verdict == "fail"  # 1 % > 0.5 %
    assert by_name["null_rate:amount_avg_1h"].value == pytest.approx(0.01)
    assert by_name["null_rate:last_country_1h"].verdict == "ok"
    healthy = user_rows(users, steps=15, entities=100, counts=[1] * 100, nulls={}, committed=END)
    assert all(s.verdict == "ok" for s in null_rate_signals(users, healthy, limits))


def test_freshness_fires_when_the_source_stalls(users: Contract, limits: HealthLimits) -> None:
    committed = END + timedelta(seconds=30)
    table = user_rows(users, steps=15, entities=5, counts=[1] * 5, nulls={}, committed=committed)
    fresh = {s.name: s for s in freshness_signals(users, table, committed + timedelta(seconds=60), limits)}
    assert fresh["freshness"].verdict == "ok" and fresh["freshness"].value == 60
    complete_end = END - (users.max_window - users.step)
    assert fresh["event_lag"].value == (committed - complete_end).total_seconds()
    stalled = {s.name: s for s in freshness_signals(users, table, committed + timedelta(minutes=3), limits)}
    assert stalled["freshness"].verdict == "fail" and stalled["freshness"].value == 180
    assert "freshness 180.0s > limit 120.0s" in stalled["freshness"].describe()
    # a pipeline that delivers its windows late: committed an hour after the newest complete window closed
    late = user_rows(users, steps=15, entities=5, counts=[1] * 5, nulls={}, committed=END + timedelta(hours=1))
    lagging = {s.name: s for s in freshness_signals(users, late, END + timedelta(hours=1), limits)}
    assert lagging["event_lag"].verdict == "fail" and lagging["freshness"].verdict == "ok"


def test_dead_letter_rate_over_the_last_interval(tmp_path: Path, users: Contract) -> None:
    runs = tmp_path / "runs"
    assert dead_letter_signal(users, newest_run_records(runs), timedelta(minutes=5), 0.01).verdict == "unknown"
    ledger = Ledger(runs / "r1")
    table = users.table_name
    batches = [(END - timedelta(minutes=20), 1000, 500),  # old: outside the interval, must not count
               (END - timedelta(minutes=2), 990, 5), (END, 985, 10)]
    for seq, (at, accepted, dead) in enumerate(batches, start=1):
        ledger.plan({})
        ledger.mark_done(BatchRecord(seq, 1, at.isoformat(), (
            TableCommit(table, 10, seq, events_accepted=accepted),
            TableCommit("dead_letters_transactions", dead, seq, dead_letters={table: {"bad_amount": dead}}))))
    signal = dead_letter_signal(users, newest_run_records(runs), timedelta(minutes=5), 0.005)
    assert signal.value == pytest.approx(15 / (990 + 985 + 15)) and signal.verdict == "fail"  # 0.75 % > 0.5 %
    assert dead_letter_signal(users, newest_run_records(runs), timedelta(minutes=5), 0.01).verdict == "ok"


def test_online_coverage_counts_expired_values_as_missing() -> None:
    now = END
    values = {"f": [1.0, None, 2.0], "f__ts": [END.timestamp() - 10, 0, END.timestamp() - 7200]}
    assert [covered(values, ["f"], i, now, ttl_s=3600) for i in range(3)] == [True, False, False]


def test_serving_error_rate_and_p99_from_its_metrics() -> None:
    registry = CollectorRegistry()
    requests = Counter("fp_serve_requests", "", ["route", "code"], registry=registry)
    duration = Histogram("fp_serve_request_duration_seconds", "", ["route"], registry=registry,
                         buckets=(0.005, 0.01, 0.05, 0.1))
    requests.labels("/get-online-features", "200").inc(990)
    requests.labels("/get-online-features", "503").inc(10)
    for _ in range(98):
        duration.labels("/get-online-features").observe(0.004)
    duration.labels("/get-online-features").observe(0.03)
    duration.labels("/get-online-features").observe(0.07)
    total, errors, buckets = parse_serve_metrics(generate_latest(registry).decode())
    assert (total, errors) == (1000, 10)
    assert p99_from_buckets(buckets) == 0.05


@pytest.mark.parametrize(("verdicts", "code"), [(["ok", "ok"], HEALTHY), (["ok", "fail"], UNHEALTHY),
                                                (["ok", "unknown"], CANNOT_TELL),
                                                (["unknown", "fail"], UNHEALTHY)])
def test_exit_code_follows_the_worst_verdict(verdicts: list[str], code: int) -> None:
    signals = tuple(Signal(f"s{i}", 1.0, 2.0, "share", v) for i, v in enumerate(verdicts))  # type: ignore[arg-type]
    report = HealthReport(END.isoformat(), (ContractHealth("c", "1.0.0", "c_v1", signals),))
    assert report.exit_code() == code
    text = report.prometheus()
    assert 'fp_health_signal_value{contract="c",signal="s0",version="1"} 1.0' in text
