"""What the rollout of a new major version will be, said in the pull request that introduces it.

A breaking change is a new major version: after the merge, the stream computes both majors side by side
(``<name>_v<old>`` and ``<name>_v<new>``) and ``feature-platform rollout start`` moves traffic to the new one by the
contract's own plan (docs/rollout.md). The reviewer sees that plan here, before approving.
"""

from __future__ import annotations

from datetime import timedelta

from pipelines.contracts.durations import format_duration
from pipelines.contracts.model import Contract

#: The controller's default failure limit (pipelines.rollout.controller.DEFAULT_FAILURE_LIMIT, which lives above).
FAILURE_LIMIT = 2


def _share(value: float) -> str:
    return f"{value:.2%}".replace(".00%", "%")


def rollout_plan(base: Contract, head: Contract) -> str | None:
    """One sentence describing the rollout from ``base``'s major to ``head``'s, or None when the major is the same."""
    if head.major_version == base.major_version:
        return None
    plan, gates = head.rollout, head.rollout.gates
    steps = " → ".join("0% (shadow)" if step == 0 else f"{step}%" for step in plan.steps)
    limits = [f"missing rate ≤ {_share(gates.missing_rate_max)}", f"error rate ≤ {_share(gates.error_rate_max)}",
              f"freshness ≤ {format_duration(gates.freshness_max)}"]
    if gates.null_rate_max is not None:
        limits.append(f"null rate ≤ {_share(gates.null_rate_max)}")
    if gates.latency_p99_max is not None and gates.latency_p99_max > timedelta(0):
        limits.append(f"p99 ≤ {format_duration(gates.latency_p99_max)}")
    dwell = format_duration(plan.dwell)
    return (f"after merge, {base.table_name} and {head.table_name} run side by side; `feature-platform rollout start "
            f"{head.name} --to {head.major_version}` moves entities {steps}, each step held {dwell} with gates "
            f"{', '.join(limits)}; a gate failing {FAILURE_LIMIT} evaluations in a row rolls back to "
            f"v{base.major_version} by itself")
