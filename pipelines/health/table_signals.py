"""Signals read from a contract version's Delta table: freshness, event-time lag, null rate per feature.

All of them look at the **newest complete step**: the newest ``window_end`` minus (largest window − step). A bounded
run's end-of-input flush emits windows ending up to that much after the last event, each holding only part of its
events; the step before them is the newest one every window of which is whole (in a continuous stream it is simply an
older complete step). The null rate is measured over that step's rows whose feature window held an event
(:mod:`pipelines.health.activity`).
"""

from __future__ import annotations

from datetime import datetime

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.contracts.model import Contract
from pipelines.health.activity import null_rate
from pipelines.health.limits import HealthLimits
from pipelines.health.signals import Signal
from pipelines.layout import INGESTED_AT, WINDOW_END


def last_complete_end(contract: Contract, newest_end: datetime) -> datetime:
    """The ``window_end`` of the newest complete step, given the newest ``window_end`` of the table."""
    return newest_end - (contract.max_window - contract.step)


def newest_complete_step(contract: Contract, table: pa.Table) -> tuple[datetime | None, pa.Table]:
    """(its ``window_end``, its rows) of the newest complete step; ``(None, empty)`` for an empty table."""
    if table.num_rows == 0:
        return None, table
    end = last_complete_end(contract, pc.max(table[WINDOW_END]).as_py())
    rows = table.filter(pc.equal(table[WINDOW_END], pa.scalar(end, table[WINDOW_END].type)))
    return end, rows


def freshness_signals(contract: Contract, table: pa.Table, now: datetime, limits: HealthLimits) -> list[Signal]:
    """``freshness``: now − the newest committed ``ingested_at`` (how long since data last arrived; a stalled source
    shows here). ``event_lag``: that commit time − the newest complete step's ``window_end`` (how late the pipeline
    delivers a window)."""
    if table.num_rows == 0:
        why = "the table holds no rows"
        return [Signal.unknown("freshness", limits.freshness_s, "seconds", why),
                Signal.unknown("event_lag", limits.event_lag_s, "seconds", why)]
    committed = pc.max(table[INGESTED_AT]).as_py()
    end, _ = newest_complete_step(contract, table)
    assert end is not None
    return [Signal.measured("freshness", (now - committed).total_seconds(), limits.freshness_s, "seconds",
                            f"newest commit {committed.isoformat()}"),
            Signal.measured("event_lag", (committed - end).total_seconds(), limits.event_lag_s, "seconds",
                            f"newest complete window ends {end.isoformat()}")]


def null_rate_signals(contract: Contract, table: pa.Table, limits: HealthLimits) -> list[Signal]:
    """``null_rate:<feature>`` over the newest complete step's rows whose feature window held an event."""
    end, rows = newest_complete_step(contract, table)
    signals = []
    for feature in contract.features:
        name, limit = f"null_rate:{feature.name}", limits.null_rate[feature.name]
        if feature.name not in rows.column_names:
            signals.append(Signal.unknown(name, limit, "share", f"`{feature.name}` is not in the table"))
            continue
        rate = null_rate(contract, feature, rows)
        if rate.rows == 0:
            signals.append(Signal.measured(name, 0.0, limit, "share", "no row with an event in the window"))
            continue
        when = end.isoformat() if end is not None else "n/a"
        signals.append(Signal.measured(name, rate.rate, limit, "share",
                                       f"{rate.nulls:,} of {rate.rows:,} rows of the step ending {when}"))
    return signals
