"""Freshness (``data-freshness``): how far the newest window lags behind now, against the contract's SLA.

The lag is ``now - newest window_end`` (``window_end`` is the instant the values hold as of). It is compared with
``sla.freshness``; a feature with its own ``sla.features.<name>.freshness`` is compared by the newest window in which
it has a value. A stale table is a warning, not an error: in CI the snapshot may simply be old, and a pull request
cannot make it fresher; the finding tells the reviewer that the SLA is not being met today.
"""

from __future__ import annotations

from datetime import datetime

from pipelines.contracts.durations import format_duration
from pipelines.contracts.load import LoadedContract
from pipelines.feature_check.data.metrics import TableMetrics
from pipelines.feature_check.data.text import duration
from pipelines.report import Finding


def freshness_findings(loaded: LoadedContract, metrics: TableMetrics, now: datetime, table: str) -> list[Finding]:
    contract = loaded.contract
    findings = []
    if metrics.newest_window_end is None:
        return findings
    lag = now - metrics.newest_window_end
    if lag > contract.sla.freshness:
        findings.append(loaded.finding(
            ("sla", "freshness"), "data-freshness",
            f"the newest window of {table} ends at {metrics.newest_window_end:%Y-%m-%d %H:%M:%S} UTC, "
            f"{duration(lag)} ago; the SLA allows {format_duration(contract.sla.freshness)}", "warning"))
    for name, override in contract.sla.features.items():
        if override.freshness is None or name not in metrics.newest_value_window_end:
            continue
        newest = metrics.newest_value_window_end[name]
        feature_lag = now - newest if newest is not None else None
        if feature_lag is None or feature_lag > override.freshness:
            seen = f"its newest value is {duration(feature_lag)} old" if feature_lag is not None else "it has no value"
            findings.append(loaded.finding(
                ("sla", "features", name, "freshness"), "data-freshness",
                f"`{name}`: {seen}; its SLA allows {format_duration(override.freshness)}", "warning"))
    return findings
