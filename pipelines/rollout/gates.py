"""The gates of a rollout: what is measured about the candidate at every evaluation, and against which limit.

From the contract's ``rollout.gates`` (defaults in the contract model) and its SLA, measured on the candidate major
with the health signals (:mod:`pipelines.health`) over the evaluation interval:

=================  ====================================================  =========================================
gate               value                                                 limit
=================  ====================================================  =========================================
``missing_rate``   recently active entities without a live online value  ``gates.missing_rate_max``
``freshness``      now − the candidate's newest commit                   ``gates.freshness_max``
``null_rate``      the worst feature's null rate over the newest step    ``gates.null_rate_max``, else the SLA's
                   (rows whose feature window held an event), as a       per-feature limits (the value is the
                   share of its own limit                                worst ratio, the limit 1.0)
``error_rate``     serving's 5xx share (when serving's metrics are       ``gates.error_rate_max``
                   configured)
``latency_p99``    serving's p99 (same)                                  ``gates.latency_p99_max`` (when set)
=================  ====================================================  =========================================

A gate whose value cannot be measured is *inconclusive*: it holds the step (the dwell cannot complete) but does not
count towards the failure limit, so a flaky metrics endpoint pauses a rollout instead of aborting it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pipelines.config import HealthDefaults, Settings
from pipelines.contracts.model import Contract
from pipelines.health.check import contract_health
from pipelines.health.limits import HealthLimits
from pipelines.health.serve_signals import serve_signals
from pipelines.health.signals import ContractHealth, Signal
from pipelines.health.snapshots import SnapshotCache
from pipelines.rollout.state import RolloutState

GateVerdict = Literal["pass", "fail", "inconclusive"]


@dataclass(frozen=True)
class GateValue:
    """One gate at one evaluation."""

    gate: str
    value: float | None
    limit: float | None
    verdict: GateVerdict
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


#: A gate measurement: the rollout → its gate values (injectable: tests and other signal sources plug in here).
GateMeasure = Callable[[RolloutState], Mapping[str, GateValue]]


def _gate(name: str, signal: Signal | None, limit: float | None) -> GateValue:
    if signal is None or signal.value is None:
        return GateValue(name, None, limit, "inconclusive", signal.detail if signal else "not measured")
    verdict: GateVerdict = "fail" if limit is not None and signal.value > limit else "pass"
    return GateValue(name, signal.value, limit, verdict, signal.detail)


def gates_from_health(contract: Contract, health: ContractHealth, serving: list[Signal]) -> dict[str, GateValue]:
    """The gate values of the candidate from its health signals and serving's signals."""
    gates_config = contract.rollout.gates
    gates = {"missing_rate": _gate("missing_rate", health.signal("missing_rate"), gates_config.missing_rate_max),
             "freshness": _gate("freshness", health.signal("freshness"),
                                gates_config.freshness_max.total_seconds())}
    limits = HealthLimits.of(contract, HealthDefaults()) if gates_config.null_rate_max is None else None
    ratios: list[tuple[float, str]] = []
    for feature in contract.features:
        signal = health.signal(f"null_rate:{feature.name}")
        if signal is None or signal.value is None:
            gates["null_rate"] = GateValue("null_rate", None, 1.0, "inconclusive", f"`{feature.name}` not measured")
            break
        limit = gates_config.null_rate_max if limits is None else limits.null_rate[feature.name]
        ratio = signal.value / limit if limit > 0 else (0.0 if signal.value == 0 else float("inf"))
        ratios.append((ratio, f"`{feature.name}` {signal.value:.3%} (limit {limit:.3%})"))
    else:
        worst = max(ratios, default=(0.0, "no feature"))
        gates["null_rate"] = GateValue("null_rate", worst[0], 1.0, "fail" if worst[0] > 1.0 else "pass", worst[1])
    by_name = {s.name: s for s in serving}
    if "serve_error_rate" in by_name:
        gates["error_rate"] = _gate("error_rate", by_name["serve_error_rate"], gates_config.error_rate_max)
    if gates_config.latency_p99_max is not None and "serve_latency_p99" in by_name:
        gates["latency_p99"] = _gate("latency_p99", by_name["serve_latency_p99"],
                                     gates_config.latency_p99_max.total_seconds())
    return gates


class HealthGates:
    """The default :data:`GateMeasure`: the candidate's health signals (Delta, ledger, online store) plus serving's
    metrics when ``FP_HEALTH__SERVE_METRICS_URL`` is set. ``candidate`` finds the contract of a rollout's candidate
    major (the contract file of that name, at that major)."""

    def __init__(self, settings: Settings, candidate: Callable[[RolloutState], Contract],
                 now: Callable[[], datetime] = lambda: datetime.now(UTC), store: Any | None = None) -> None:
        self.settings, self.candidate, self.now, self.store = settings, candidate, now, store
        self.snapshots = SnapshotCache()  # the candidate's table is re-read only when its Delta version moved

    def __call__(self, state: RolloutState) -> dict[str, GateValue]:
        contract = self.candidate(state)
        health = contract_health(contract, self.settings, self.now(), store=self.store, with_serving=False,
                                 snapshots=self.snapshots)
        limits = HealthLimits.of(contract, self.settings.health)
        serving = serve_signals(self.settings.health.serve_metrics_url, limits, self.settings.health.timeout_s)
        return gates_from_health(contract, health, serving)
