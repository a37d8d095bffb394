"""``check_health``: every signal of each contract version, as one :class:`~pipelines.health.signals.HealthReport`.

Per contract version (its Delta table ``<name>_v<major>``), in data-flow order: the table (freshness, event-time lag,
null rate per feature over the newest complete step) → the run's commit ledger (dead-letter rate of the interval) →
the online store (missing rate of the recently active entities) → serving's metrics when configured (error rate,
p99). Reading is all it does: no JVM, no writes. The rollout gates call the same functions for a candidate version.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pipelines.config import Settings
from pipelines.contracts.model import Contract
from pipelines.delta.tables import read_table
from pipelines.health.dead_letter_signal import dead_letter_signal, newest_run_records
from pipelines.health.limits import HealthLimits
from pipelines.health.online_signal import active_entities, missing_rate_signal
from pipelines.health.serve_signals import serve_signals
from pipelines.health.signals import ContractHealth, HealthReport, Signal
from pipelines.health.snapshots import Snapshot, SnapshotCache
from pipelines.health.table_signals import freshness_signals, newest_complete_step, null_rate_signals


def _read(path: Path, snapshots: SnapshotCache | None) -> Snapshot | None:
    if snapshots is not None:
        return snapshots.read(path)
    table = read_table(path)
    return Snapshot(-1, table) if table is not None else None


def contract_health(contract: Contract, settings: Settings, now: datetime, *, store: Any | None = None,
                    with_serving: bool = True, snapshots: SnapshotCache | None = None) -> ContractHealth:
    """The signals of one contract version (``contract`` is the version to check: its major names the table).
    ``snapshots`` keeps the table's rows and what is derived from them between calls while its version stays the
    same (the rollout controller evaluates every interval; see :mod:`pipelines.health.snapshots`)."""
    limits = HealthLimits.of(contract, settings.health)
    path = settings.delta_table_path(contract.table_name)
    try:
        snapshot = _read(path, snapshots)
    except Exception as error:  # an unreadable table is "cannot tell", named
        snapshot, why = None, f"Delta table {path} unreadable: {type(error).__name__}: {error}"
    else:
        why = f"no Delta table at {path}"
    if snapshot is None:
        signals = [Signal.unknown("table", None, "share", why)]
    else:
        table = snapshot.table
        step_rows = snapshot.derive("step_rows", lambda rows: newest_complete_step(contract, rows)[1])
        entities = snapshot.derive("active_entities", lambda _rows: active_entities(contract, step_rows))
        signals = [*freshness_signals(contract, table, now, limits),
                   *snapshot.derive("null_rates", lambda rows: null_rate_signals(contract, rows, limits))]
        signals.append(dead_letter_signal(contract, newest_run_records(settings.flink_dir / "runs"),
                                          timedelta(seconds=settings.health.interval_s), limits.dead_letter_rate))
        signals.append(missing_rate_signal(contract, entities, settings, now, limits.missing_rate, store))
    if with_serving:
        signals += serve_signals(settings.health.serve_metrics_url, limits, settings.health.timeout_s)
    return ContractHealth(contract.name, contract.version, contract.table_name, tuple(signals))


def check_health(contracts: Sequence[Contract], settings: Settings, *, now: datetime | None = None,
                 store: Any | None = None) -> HealthReport:
    """The health of each contract version (``now`` defaults to the current UTC time)."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return HealthReport(moment.isoformat(), tuple(contract_health(c, settings, moment, store=store)
                                                  for c in contracts))
