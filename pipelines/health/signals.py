"""What a health check returns: one :class:`Signal` per measured thing, grouped per contract version.

Library code returns these; only the CLI (``feature-platform health``) and the rollout gates decide what to do with
them. A signal has a value, the limit it is held to, and a verdict:

* ``ok``: measured and within its limit;
* ``fail``: measured and over its limit (the value and the limit are named);
* ``unknown``: could not be measured (the table, the store or the server could not be read; ``detail`` says which).

The exit code of a report (:meth:`HealthReport.exit_code`): 1 when any signal fails, else 2 when any is unknown,
else 0. A failing signal is a fact worth acting on even when another could not be read, so 1 wins over 2.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

Verdict = Literal["ok", "fail", "unknown"]

#: Exit codes of ``feature-platform health``.
HEALTHY, UNHEALTHY, CANNOT_TELL = 0, 1, 2


@dataclass(frozen=True)
class Signal:
    """One measured signal of one contract version.

    ``name`` is stable (``freshness``, ``event_lag``, ``null_rate:<feature>``, ``dead_letter_rate``,
    ``missing_rate``, ``serve_error_rate``, ``serve_latency_p99``); ``value`` and ``limit`` are in ``unit`` (seconds
    or a share), ``value`` is None when ``verdict`` is ``unknown``.
    """

    name: str
    value: float | None
    limit: float | None
    unit: Literal["seconds", "share"]
    verdict: Verdict
    detail: str = ""

    @classmethod
    def measured(cls, name: str, value: float, limit: float | None, unit: Literal["seconds", "share"],
                 detail: str = "") -> Signal:
        """A measured signal: ``fail`` when ``value`` is above ``limit`` (no limit: always ``ok``)."""
        verdict: Verdict = "fail" if limit is not None and value > limit else "ok"
        return cls(name, value, limit, unit, verdict, detail)

    @classmethod
    def unknown(cls, name: str, limit: float | None, unit: Literal["seconds", "share"], why: str) -> Signal:
        return cls(name, None, limit, unit, "unknown", why)

    def describe(self) -> str:
        """``null_rate:amount_avg_1h 0.62% > limit 0.50%`` (what a person reads in the CLI)."""
        if self.value is None:
            return f"{self.name}: cannot tell ({self.detail})"
        op = ">" if self.verdict == "fail" else "<="
        limit = f" {op} limit {_fmt(self.limit, self.unit)}" if self.limit is not None else ""
        extra = f" ({self.detail})" if self.detail else ""
        return f"{self.name} {_fmt(self.value, self.unit)}{limit}{extra}"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "limit": self.limit, "unit": self.unit,
                "verdict": self.verdict, "detail": self.detail}


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    return f"{value:.1f}s" if unit == "seconds" else f"{value:.2%}"


@dataclass(frozen=True)
class ContractHealth:
    """The signals of one contract version (``table`` is ``<name>_v<major>``)."""

    contract: str
    version: str
    table: str
    signals: tuple[Signal, ...]

    @property
    def verdict(self) -> Verdict:
        return worst(s.verdict for s in self.signals)

    @property
    def failing(self) -> list[Signal]:
        return [s for s in self.signals if s.verdict == "fail"]

    @property
    def unknown(self) -> list[Signal]:
        return [s for s in self.signals if s.verdict == "unknown"]

    def signal(self, name: str) -> Signal | None:
        return next((s for s in self.signals if s.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        return {"contract": self.contract, "version": self.version, "table": self.table, "verdict": self.verdict,
                "signals": [s.to_dict() for s in self.signals]}


def worst(verdicts: Iterable[Verdict]) -> Verdict:
    """``fail`` over ``unknown`` over ``ok`` (see the module docstring)."""
    seen = set(verdicts)
    return "fail" if "fail" in seen else "unknown" if "unknown" in seen else "ok"


@dataclass(frozen=True)
class HealthReport:
    """Every checked contract version, measured at ``measured_at`` (ISO-8601 UTC)."""

    measured_at: str
    contracts: tuple[ContractHealth, ...] = field(default_factory=tuple)

    @property
    def verdict(self) -> Verdict:
        return worst(c.verdict for c in self.contracts)

    def exit_code(self) -> int:
        return {"ok": HEALTHY, "fail": UNHEALTHY, "unknown": CANNOT_TELL}[self.verdict]

    def to_dict(self) -> dict[str, Any]:
        return {"measured_at": self.measured_at, "verdict": self.verdict, "exit_code": self.exit_code(),
                "contracts": [c.to_dict() for c in self.contracts]}

    def prometheus(self) -> str:
        """Exposition text: ``fp_health_signal_value``, ``fp_health_signal_limit`` (labels contract, version,
        signal) and ``fp_health_healthy`` (1 ok, 0 fail, -1 cannot tell) per contract version."""
        from prometheus_client import CollectorRegistry, Gauge, generate_latest

        registry = CollectorRegistry()
        labels = ["contract", "version", "signal"]
        value = Gauge("fp_health_signal_value", "Measured value of a health signal (seconds or share).", labels,
                      registry=registry)
        limit = Gauge("fp_health_signal_limit", "Limit of a health signal from the contract.", labels,
                      registry=registry)
        healthy = Gauge("fp_health_healthy", "1 healthy, 0 unhealthy, -1 cannot tell.", ["contract", "version"],
                        registry=registry)
        for contract in self.contracts:
            major = contract.version.split(".", 1)[0]
            healthy.labels(contract.contract, major).set({"ok": 1, "fail": 0, "unknown": -1}[contract.verdict])
            for signal in contract.signals:
                if signal.value is not None:
                    value.labels(contract.contract, major, signal.name).set(signal.value)
                if signal.limit is not None:
                    limit.labels(contract.contract, major, signal.name).set(signal.limit)
        return generate_latest(registry).decode("utf-8")
