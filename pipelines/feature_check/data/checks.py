"""``run_data_checks``: every data check of ``feature-check --data`` over each contract's newest Delta snapshot.

Per contract, in data-flow order: read the newest version and the previous data version → Arrow metrics → the GX
suite (:mod:`.suite`) validated in one ephemeral, offline context shared by all contracts (opened only when some
table exists) → freshness → consistency with the previous version → verdicts on the change when the base contract is
given → the state estimate. Each check returns findings with a stable rule id (docs/data-checks.md); findings about a
contract setting point at its line, findings about the data alone use line 0 and a ``data.<what>`` path.

The result is one :class:`~pipelines.report.ContractReport` per contract; :func:`check_contract` also returns the
time spent per phase (the benchmark reads it).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pipelines.config import Settings
from pipelines.contracts.load import LoadedContract
from pipelines.contracts.model import Contract
from pipelines.feature_check.data.consistency import RowCountChange, distribution_shifts
from pipelines.feature_check.data.freshness import freshness_findings
from pipelines.feature_check.data.gx_run import SpecOutcome, open_context, validate
from pipelines.feature_check.data.metrics import table_metrics
from pipelines.feature_check.data.resources import ResourceEstimate, estimate_resources
from pipelines.delta.snapshots import Snapshot, read_snapshot
from pipelines.feature_check.data.suite import PANDAS_TYPES, build_specs
from pipelines.feature_check.data.text import percent
from pipelines.feature_check.data.verdicts import change_verdicts, pending_features
from pipelines.report import ContractReport, Finding


@dataclass
class TableCheck:
    """The report of one contract plus what the benchmark and callers may want to see."""

    report: ContractReport
    estimate: ResourceEstimate
    snapshot_version: int | None = None
    previous_version: int | None = None
    timings: dict[str, float] = field(default_factory=dict)


def _data_finding(loaded: LoadedContract, what: str, rule: str, message: str, severity: str = "error") -> Finding:
    return Finding(loaded.file, 0, 0, f"data.{what}", rule, message, severity)  # type: ignore[arg-type]


def _finding(loaded: LoadedContract, outcome: SpecOutcome, table: str) -> Finding | None:
    spec, result = outcome.spec, outcome.result
    if outcome.error is not None:
        message = f"Great Expectations could not evaluate {spec.expectation} on {table}: {outcome.error}"
        return _locate(loaded, outcome, "data-gx-error", message)
    if outcome.success:
        return None
    column = f"`{spec.column}`" if spec.column else ""
    rows, bad = int(result.get("element_count") or 0), int(result.get("unexpected_count") or 0)
    share = bad / rows if rows else 0.0
    match spec.rule:
        case "data-schema" if spec.column is None:
            observed = list(result.get("observed_value") or [])
            expected = list(spec.kwargs["column_list"])
            missing = [c for c in expected if c not in observed]
            extra = [c for c in observed if c not in expected]
            detail = "; ".join(part for part in (f"missing: {', '.join(missing)}" if missing else "",
                                                  f"not in the contract: {', '.join(extra)}" if extra else "") if part)
            message = f"{table} does not have the contract's columns in the Delta layout's order ({detail or 'order'})"
        case "data-schema":
            kind = spec.detail["type"]
            message = (f"{column} of {table} holds {result.get('observed_value')} values; the contract says {kind} "
                       f"({PANDAS_TYPES[kind]} in the checked frame)")
        case "data-null-key":
            message = f"{column} is null in {bad:,} of {rows:,} rows of {table}; it must always be set"
        case "data-null-rate":
            message = (f"{column} is null in {percent(share)} of {rows:,} rows of {table}; the limit is "
                       f"{percent(spec.detail['limit'])}")
        case "data-unique-window":
            keys = ", ".join(spec.kwargs["column_list"])
            message = (f"{bad:,} rows of {table} share their ({keys}) with another row; one row per entity and "
                       f"window is expected")
        case _:
            message = f"{bad:,} of {rows:,} rows of {table} break it: {spec.detail.get('why', spec.expectation)}"
    return _locate(loaded, outcome, spec.rule, message)


def _locate(loaded: LoadedContract, outcome: SpecOutcome, rule: str, message: str) -> Finding:
    spec = outcome.spec
    if spec.yaml_path is None:
        return _data_finding(loaded, spec.column or "table", rule, message)
    return loaded.finding(spec.yaml_path, rule, message)


def _consistency_findings(loaded: LoadedContract, snapshot: Snapshot, settings: Settings) -> list[Finding]:
    if snapshot.previous is None or snapshot.previous.num_rows == 0:
        return []
    thresholds = settings.data_checks
    table = loaded.contract.table_name
    findings = []
    change = RowCountChange(snapshot.previous.num_rows, snapshot.table.num_rows)
    if change.breaches(thresholds):
        findings.append(_data_finding(
            loaded, "row_count", "data-row-count-shift",
            f"{table} went from {change.previous:,} rows (version {snapshot.previous_version}) to {change.current:,} "
            f"(version {snapshot.version}), {change.relative:+.1%}; allowed: -{percent(thresholds.row_count_drop_max)}"
            f" to +{percent(thresholds.row_count_growth_max)}", "warning"))
    index = {f.name: i for i, f in enumerate(loaded.contract.features)}
    for shift in distribution_shifts(loaded.contract, snapshot.previous, snapshot.table, thresholds):
        if shift.breaches(thresholds):
            ks = f", KS {shift.ks:.3f} (max {thresholds.ks_max})" if shift.ks is not None else ""
            findings.append(loaded.finding(
                ("features", index[shift.feature]), "data-distribution-shift",
                f"`{shift.feature}` shifted between versions {snapshot.previous_version} and {snapshot.version} of "
                f"{table}: PSI {shift.psi:.3f} (max {thresholds.psi_max}){ks}, {shift.previous_rows:,} vs "
                f"{shift.current_rows:,} values", "warning"))
    return findings


def _estimate_findings(loaded: LoadedContract, estimate: ResourceEstimate) -> list[Finding]:
    findings = [loaded.finding(("entity", "join_keys"), "state-estimate", estimate.summary(), "info")]
    if estimate.over_budget:
        index = next(i for i, f in enumerate(loaded.contract.features) if f.name == estimate.largest_feature)
        findings.append(loaded.finding(
            ("features", index, "window"), "state-budget",
            f"the Flink job of {loaded.contract.table_name} would hold {estimate.heap_bytes / 2**20:,.0f} MiB of "
            f"state, above the budget of {estimate.budget_bytes / 2**20:,.0f} MiB (data_checks.state_budget_mib): "
            f"{estimate.summary()}", "warning"))
    return findings


def _missing_table(loaded: LoadedContract, base: Contract | None, settings: Settings,
                   started: float) -> TableCheck:
    contract = loaded.contract
    expected_new = base is not None and base.table_name != contract.table_name
    where = ("version",) if expected_new else None
    message = (f"no Delta table {contract.table_name} yet" + (" (a new major version writes a new table)"
                                                              if expected_new else "") + "; data checks skipped")
    severity = "info" if expected_new else "warning"
    finding = (loaded.finding(where, "data-no-table", message, severity) if where
               else _data_finding(loaded, "table", "data-no-table", message, severity))
    estimate = estimate_resources(contract, cardinality=None, settings=settings)
    report = ContractReport(loaded.file, contract.name, contract.version, [finding, *_estimate_findings(loaded,
                                                                                                        estimate)])
    return TableCheck(report, estimate, timings={"total": time.perf_counter() - started})


def check_contract(loaded: LoadedContract, settings: Settings, *, base: Contract | None, now: datetime,
                   gx_context: Callable[[], Any]) -> TableCheck:
    """Every data check of one contract; ``gx_context`` returns the shared GX context (opened on first call)."""
    started = time.perf_counter()
    contract = loaded.contract
    snapshot = read_snapshot(settings.delta_table_path(contract.table_name))
    if snapshot is None:
        return _missing_table(loaded, base, settings, started)
    timings = {"read": snapshot.read_seconds}

    mark = time.perf_counter()
    metrics = table_metrics(contract, snapshot.table)
    pending = pending_features(contract, base, snapshot.table.column_names)
    verdicts = change_verdicts(loaded, base, metrics, now, pending) if base is not None else None
    tagged: list[tuple[Finding, str]] = [(f, "") for f in freshness_findings(loaded, metrics, now,
                                                                             contract.table_name)]
    tagged += [(f, "") for f in _consistency_findings(loaded, snapshot, settings)]
    estimate = estimate_resources(contract, cardinality=metrics.active_keys or None, settings=settings,
                                  distinct_values=metrics.mean_value,
                                  cardinality_source="delta" if metrics.active_keys else None)
    tagged += [(f, "") for f in _estimate_findings(loaded, estimate)]
    timings["metrics"] = time.perf_counter() - mark

    specs = build_specs(contract, snapshot.table.column_names, pending)
    gx = validate(gx_context(), f"{contract.table_name}_v{snapshot.version}", snapshot.table, specs)
    timings["gx_frame"], timings["gx_validate"] = gx.frame_seconds, gx.validate_seconds
    for outcome in gx.outcomes:
        finding = _finding(loaded, outcome, contract.table_name)
        if finding is not None:
            tagged.append((finding, outcome.spec.column or ""))

    superseded = verdicts.superseded if verdicts is not None else set()
    findings = [f for f, column in tagged if (f.rule, column) not in superseded]
    findings += verdicts.findings if verdicts is not None else []
    timings["total"] = time.perf_counter() - started
    report = ContractReport(loaded.file, contract.name, contract.version, sorted(set(findings)))
    return TableCheck(report, estimate, snapshot.version, snapshot.previous_version, timings)


def run_data_checks(contracts: Sequence[LoadedContract], settings: Settings, *,
                    base_contracts: Mapping[str, Contract] | None = None,
                    now: datetime | None = None) -> list[ContractReport]:
    """Data checks of each contract against its newest Delta snapshot, one report per contract, in order.

    ``base_contracts`` maps a contract *name* to its version in the base revision (the pull request's target); with
    it, the change itself is judged against the data (:mod:`pipelines.feature_check.data.verdicts`). ``now`` (UTC) is the
    reference of the freshness check (default: the current time). Never opens a network connection.
    """
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    bases = base_contracts or {}
    context: list[Any] = []

    def shared_context() -> Any:
        if not context:
            context.append(open_context())
        return context[0]

    return [check_contract(loaded, settings, base=bases.get(loaded.contract.name), now=moment,
                           gx_context=shared_context).report for loaded in contracts]

