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
=================  ====================================================  =========================================

and, when serving's metrics are configured (``FP_HEALTH__SERVE_METRICS_URL``), on the entities routed to the
candidate major over the interval since the previous evaluation (in ``shadow``, where nothing is routed to it: on
its shadow reads), from :class:`~pipelines.health.serve_signals.ServingInterval`:

======================  ===============================================  =========================================
gate                    value                                            limit
======================  ===============================================  =========================================
``serve_missing_rate``  entities without any live value                  ``gates.missing_rate_max``
``fallback_rate``       entities given at least one fallback value       ``gates.fallback_rate_max``
``error_rate``          entities whose store read failed or missed the   ``gates.error_rate_max``
                        deadline
``latency_p99``         p99 of the requests the candidate served in      ``gates.latency_p99_max`` (only when set)
                        (in shadow: of its shadow reads)
======================  ===============================================  =========================================

An interval with no entity routed to the candidate (no traffic) leaves the serving gates inconclusive. The first
evaluation after the controller started measures from a scrape taken at its start (inconclusive when serving's
metrics could not be read then).

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
from pipelines.health.serve_signals import ServingInterval
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
    gates.update(serving_gates(contract, serving))
    return gates


def serving_gates(contract: Contract, serving: list[Signal]) -> dict[str, GateValue]:
    """The serving gates from the candidate major's interval signals (none when serving is not measured)."""
    config = contract.rollout.gates
    by_name = {s.name: s for s in serving}
    gates = {}
    for gate, signal, limit in (("serve_missing_rate", "serve_missing_rate", config.missing_rate_max),
                                ("fallback_rate", "fallback_rate", config.fallback_rate_max),
                                ("error_rate", "serve_error_rate", config.error_rate_max)):
        if signal in by_name:
            gates[gate] = _gate(gate, by_name[signal], limit)
    if config.latency_p99_max is not None and "serve_latency_p99" in by_name:
        limit = config.latency_p99_max.total_seconds()
        gates["latency_p99"] = _gate("latency_p99", by_name["serve_latency_p99"], limit)
    return gates


class HealthGates:
    """The default :data:`GateMeasure`: the candidate's health signals (Delta, ledger, online store) plus serving's
    per-major metrics over the interval when ``FP_HEALTH__SERVE_METRICS_URL`` is set. ``candidate`` finds the contract
    of a rollout's candidate major (the contract file of that name, at that major). Build it when the controller
    starts: it scrapes serving's metrics then, the baseline of the first interval."""

    def __init__(self, settings: Settings, candidate: Callable[[RolloutState], Contract],
                 now: Callable[[], datetime] = lambda: datetime.now(UTC), store: Any | None = None) -> None:
        self.settings, self.candidate, self.now, self.store = settings, candidate, now, store
        url = settings.health.serve_metrics_url
        self.serving = ServingInterval(url, settings.health.timeout_s) if url else None
        self.snapshots = SnapshotCache()  # the candidate's table is re-read only when its Delta version moved

    def __call__(self, state: RolloutState) -> dict[str, GateValue]:
        contract = self.candidate(state)
        health = contract_health(contract, self.settings, self.now(), store=self.store, with_serving=False,
                                 snapshots=self.snapshots)
        serving = ([] if self.serving is None else
                   self.serving.signals(state.contract, state.candidate_major, shadow=state.phase == "shadow"))
        return gates_from_health(contract, health, serving)
