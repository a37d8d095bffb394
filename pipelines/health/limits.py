"""The limit of every health signal, from the contract first and from :class:`~pipelines.config.HealthDefaults`
where the contract says nothing (docs/health.md lists them)."""

from __future__ import annotations

from dataclasses import dataclass

from pipelines.config import HealthDefaults
from pipelines.contracts.model import Contract


@dataclass(frozen=True)
class HealthLimits:
    """Limits in seconds or shares. ``latency_p99_s`` is None when the contract sets no latency gate."""

    freshness_s: float
    event_lag_s: float
    null_rate: dict[str, float]
    dead_letter_rate: float
    missing_rate: float
    error_rate: float
    latency_p99_s: float | None

    @classmethod
    def of(cls, contract: Contract, defaults: HealthDefaults) -> HealthLimits:
        """``freshness``: ``sla.freshness``. ``event_lag``: ``sla.freshness`` + the step + ``allowed_lateness`` (a
        window can be committed only after its step closed and the watermark passed it). ``null_rate``: the feature's
        ``sla.features.<f>.null_rate_max``, else ``sla.null_rate_max``. ``missing_rate``, ``error_rate`` and
        ``latency_p99``: the contract's rollout gates. ``dead_letter_rate``: ``FP_HEALTH__DEAD_LETTER_RATE_MAX``."""
        sla, gates = contract.sla, contract.rollout.gates
        null_rate = {}
        for feature in contract.features:
            override = sla.features.get(feature.name)
            null_rate[feature.name] = (override.null_rate_max if override is not None
                                       and override.null_rate_max is not None else sla.null_rate_max)
        freshness = sla.freshness.total_seconds()
        lag = freshness + contract.step.total_seconds() + contract.source.allowed_lateness.total_seconds()
        return cls(freshness_s=freshness, event_lag_s=lag, null_rate=null_rate,
                   dead_letter_rate=defaults.dead_letter_rate_max, missing_rate=gates.missing_rate_max,
                   error_rate=gates.error_rate_max,
                   latency_p99_s=gates.latency_p99_max.total_seconds() if gates.latency_p99_max else None)
