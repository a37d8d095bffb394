"""The state of one rollout (a contract moving from its stable major to a candidate major) and its audit entries.

Phases: ``shadow`` (weight 0: every request is served by the stable major; the candidate is measured beside it),
``step`` (the candidate serves ``weight`` % of the entities), ``promoted`` (the candidate serves everything and is
the new stable major) and ``aborted`` (weight 0 at once; ``reason`` says why). ``promoted`` and ``aborted`` are final.

The state is a plain, JSON-ready value: the store (:mod:`pipelines.rollout.store`) keeps it durable and shared, with
a ``revision`` that every write must name (compare-and-set), so a controller and a person acting at the same moment
cannot overwrite each other silently.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

Phase = Literal["shadow", "step", "promoted", "aborted"]
FINAL_PHASES: frozenset[str] = frozenset({"promoted", "aborted"})
Actor = Literal["controller", "user"]


@dataclass(frozen=True)
class RolloutState:
    """One rollout. ``steps`` and ``dwell_s`` are the contract's plan as it was when the rollout started."""

    rollout_id: str
    contract: str
    stable_major: int
    candidate_major: int
    steps: tuple[int, ...]
    dwell_s: float
    interval_s: float
    failure_limit: int
    phase: Phase
    step_index: int
    step_started_at: float
    started_at: float
    failures: dict[str, int] = field(default_factory=dict)  # gate -> consecutive failed evaluations
    last_evaluated_at: float | None = None
    reason: str = ""
    revision: int = 0
    #: The stable major's contract (its model as JSON): the repository holds only the candidate's file once the new
    #: major is merged, and serving needs the stable view's keys, features and fallbacks to keep serving it.
    stable_contract: dict[str, Any] | None = None

    @property
    def weight(self) -> int:
        """Percent of entities the candidate serves now (0 in shadow and after an abort, 100 once promoted)."""
        if self.phase == "aborted":
            return 0
        if self.phase == "promoted":
            return 100
        return self.steps[self.step_index]

    @property
    def active(self) -> bool:
        return self.phase not in FINAL_PHASES

    @property
    def serving_major(self) -> int:
        """The major that serves entities outside the candidate's share."""
        return self.candidate_major if self.phase == "promoted" else self.stable_major

    def at_step(self, index: int, now: float) -> RolloutState:
        phase: Phase = "shadow" if self.steps[index] == 0 else "step"
        return replace(self, step_index=index, phase=phase, step_started_at=now, failures={})

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["steps"] = list(self.steps)
        data["weight"] = self.weight
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RolloutState:
        values = {k: v for k, v in data.items() if k != "weight"}
        values["steps"] = tuple(values["steps"])
        return cls(**values)


@dataclass(frozen=True)
class AuditEntry:
    """One line of the rollout log: what happened, when, who did it, and the gate values behind it."""

    at: float
    rollout_id: str
    contract: str
    kind: Literal["start", "step", "promote", "abort", "evaluate"]
    actor: Actor
    weight: int
    detail: str = ""
    gates: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
