"""Verdicts on the change itself: what the current data says about a contract edit under review (needs the base).

* ``data-limit-already-violated`` (error): a null-rate limit the change tightens is already exceeded by the current
  rows, e.g. "the new null-rate limit of 0.1 % is already violated by 0.4 % of current rows". It replaces the plain
  ``data-null-rate`` finding of that feature (same cause, sharper message). A tightened ``sla.freshness`` that the
  newest window already misses is reported under the same rule as a warning (a stale CI snapshot is not the pull
  request's fault) and replaces the plain ``data-freshness`` finding.
* ``data-limit-loosened`` (info): a limit the change loosens although current data meets the old one.
* ``data-new-feature`` (info): a feature the change adds has no column in the table yet; its checks wait for data.
* ``data-definition-changed`` (info): a feature keeps its name but changes aggregation, column or window; the values
  in Delta were computed with the old definition, so its data checks describe that one until the job rewrites it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from pipelines.contracts.durations import format_duration
from pipelines.contracts.load import LoadedContract, YamlPath
from pipelines.contracts.model import Contract
from pipelines.feature_check.data.metrics import TableMetrics
from pipelines.feature_check.data.suite import null_rate_limit
from pipelines.feature_check.data.text import duration, percent
from pipelines.report import Finding


@dataclass
class Verdicts:
    findings: list[Finding] = field(default_factory=list)
    #: (rule, column or "") of plain findings a verdict replaces
    superseded: set[tuple[str, str]] = field(default_factory=set)


def pending_features(contract: Contract, base: Contract | None, columns: list[str]) -> set[str]:
    """Features the change adds that the table has no column for yet."""
    if base is None:
        return set()
    known = {f.name for f in base.features}
    return {f.name for f in contract.features if f.name not in known and f.name not in columns}


def change_verdicts(loaded: LoadedContract, base: Contract, metrics: TableMetrics, now: datetime,
                    pending: set[str]) -> Verdicts:
    contract = loaded.contract
    verdicts = Verdicts()
    base_features = {f.name: f for f in base.features}
    for index, feature in enumerate(contract.features):
        if feature.name in pending:
            verdicts.findings.append(loaded.finding(
                ("features", index), "data-new-feature",
                f"`{feature.name}` is new: {contract.table_name} has no column for it yet, its data checks run "
                f"once the job has written it", "info"))
            continue
        old = base_features.get(feature.name)
        if old is None or feature.name not in metrics.null_share:
            continue
        if (old.aggregation, old.column, old.window) != (feature.aggregation, feature.column, feature.window):
            verdicts.findings.append(loaded.finding(
                ("features", index), "data-definition-changed",
                f"`{feature.name}` changes its definition; the values in {contract.table_name} were computed with "
                f"the old one, so its data checks describe that until the job rewrites the table", "info"))
        _tightened_null_rate(loaded, base, feature.name, metrics, verdicts)
    _loosened_null_rates(loaded, base, metrics, verdicts)
    _freshness_verdict(loaded, base, metrics, now, verdicts)
    return verdicts


def _tightened_null_rate(loaded: LoadedContract, base: Contract, name: str, metrics: TableMetrics,
                        verdicts: Verdicts) -> None:
    new_limit, path = null_rate_limit(loaded.contract, name)
    old_limit, _ = null_rate_limit(base, name)
    share = metrics.null_share[name]
    if new_limit < old_limit and share > new_limit:
        verdicts.findings.append(loaded.finding(
            path, "data-limit-already-violated",
            f"the new null-rate limit of {percent(new_limit)} for `{name}` is already violated by "
            f"{percent(share)} of current rows ({metrics.rows:,} rows; the old limit was {percent(old_limit)})"))
        verdicts.superseded.add(("data-null-rate", name))


def _loosened_null_rates(loaded: LoadedContract, base: Contract, metrics: TableMetrics, verdicts: Verdicts) -> None:
    """One info per loosened setting, when every feature it governs already meets the old limit."""
    governed: dict[YamlPath, list[tuple[str, float, float]]] = {}
    base_names = {f.name for f in base.features}
    for name in metrics.null_share:
        if name in base_names:
            new_limit, path = null_rate_limit(loaded.contract, name)
            governed.setdefault(path, []).append((name, new_limit, null_rate_limit(base, name)[0]))
    for path, features in governed.items():
        loosened = [(name, new, old) for name, new, old in features if new > old]
        if not loosened or len(loosened) != len(features):
            continue
        worst = max(features, key=lambda item: metrics.null_share[item[0]])[0]
        if all(metrics.null_share[name] <= old for name, _, old in loosened):
            _, new, old = loosened[0]
            verdicts.findings.append(loaded.finding(
                path, "data-limit-loosened",
                f"the null-rate limit is loosened from {percent(old)} to {percent(new)}, but current data already "
                f"meets the old one (most nulls: `{worst}`, {percent(metrics.null_share[worst])})", "info"))


def _freshness_verdict(loaded: LoadedContract, base: Contract, metrics: TableMetrics, now: datetime,
                       verdicts: Verdicts) -> None:
    new, old = loaded.contract.sla.freshness, base.sla.freshness
    if new >= old or metrics.newest_window_end is None:
        return
    lag = now - metrics.newest_window_end
    if lag > new:
        verdicts.findings.append(loaded.finding(
            ("sla", "freshness"), "data-limit-already-violated",
            f"the new freshness SLA of {format_duration(new)} is already missed: the newest window is "
            f"{duration(lag)} old (the old SLA allowed {format_duration(old)})", "warning"))
        verdicts.superseded.add(("data-freshness", ""))
