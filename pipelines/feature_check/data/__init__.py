"""Data checks of ``feature-check --data``: what the Delta tables say about the contracts that describe them.

Data flow: read the newest Delta version and the one before it (:mod:`pipelines.delta.snapshots`) → Arrow metrics (:mod:`.metrics`)
→ a Great Expectations suite built from the contract and validated in an ephemeral, offline context
(:mod:`.suite`, :mod:`.gx_run`) → freshness (:mod:`.freshness`) → consistency with the previous version
(:mod:`.consistency`) → verdicts on the change against the base contract (:mod:`.verdicts`) → a Flink state estimate
(:mod:`.resources`). :mod:`.checks` runs them in that order and returns one report per contract.

This package is imported lazily by the gate (:mod:`pipelines.feature_check.gate`); its thresholds live in
:class:`pipelines.config.DataCheckThresholds`. Its ``__init__`` imports nothing heavy; the public names below load
their modules on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipelines.feature_check.data.checks import run_data_checks
    from pipelines.feature_check.data.resources import ResourceEstimate, estimate_resources

__all__ = ["ResourceEstimate", "estimate_resources", "run_data_checks"]

_HOMES = {"run_data_checks": "pipelines.feature_check.data.checks", "estimate_resources": "pipelines.feature_check.data.resources",
          "ResourceEstimate": "pipelines.feature_check.data.resources"}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        import importlib

        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
