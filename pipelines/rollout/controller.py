"""The rollout controller: evaluates the gates of every active rollout and moves it through its plan.

A rollout starts in its first step (``shadow`` when that step is 0 %). At every evaluation interval the controller
measures the gates (:mod:`pipelines.rollout.gates`) and writes the result to the audit log. Then, in this order:

1. a gate that failed ``failure_limit`` consecutive evaluations (default 2) aborts the rollout: weight 0 at once,
   the reason names the gate, its value and its limit. The time to roll back is at most interval × failure limit.
2. when every gate passed and the step has lasted ``dwell``, the rollout moves to the next step; after the last step
   (100 %) has lasted ``dwell`` with passing gates, it is ``promoted``.

Manual :func:`promote` and :func:`abort` always win: they retry their compare-and-set until it lands, and the
controller, whose write then conflicts, re-reads the state on its next tick instead of overwriting it. Everything
lives in the store, so a controller killed at any point (SIGKILL included) resumes the same state on restart: the
step's start time and the consecutive failures are stored, not remembered.

Time is wall-clock seconds from an injectable ``now`` (tests run dwell and intervals in virtual time); it is stored
and shared by processes, so it cannot be a monotonic clock.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import replace

from pipelines.contracts.model import Contract
from pipelines.rollout import metrics
from pipelines.rollout.errors import RolloutConflictError, RolloutRefusedError
from pipelines.rollout.gates import GateMeasure, GateValue
from pipelines.rollout.state import Actor, AuditEntry, RolloutState
from pipelines.rollout.store import RolloutStore

log = logging.getLogger(__name__)

DEFAULT_INTERVAL_S = 60.0
DEFAULT_FAILURE_LIMIT = 2


def _publish(state: RolloutState, gates: dict[str, GateValue] | None = None) -> None:
    metrics.WEIGHT.labels(state.contract).set(state.weight)
    for gate in (gates or {}).values():
        if gate.value is not None:
            metrics.GATE_VALUE.labels(state.contract, gate.gate).set(gate.value)
        if gate.limit is not None:
            metrics.GATE_LIMIT.labels(state.contract, gate.gate).set(gate.limit)


def _entry(state: RolloutState, kind: str, actor: Actor, now: float, detail: str = "",
           gates: dict[str, GateValue] | None = None) -> AuditEntry:
    return AuditEntry(now, state.rollout_id, state.contract, kind, actor, state.weight, detail,  # type: ignore[arg-type]
                      {name: gate.to_dict() for name, gate in (gates or {}).items()})


def start(store: RolloutStore, candidate: Contract, *, stable_major: int, now: float,
          interval_s: float = DEFAULT_INTERVAL_S, failure_limit: int = DEFAULT_FAILURE_LIMIT,
          actor: Actor = "user", stable: Contract | None = None) -> RolloutState:
    """Start rolling ``candidate`` (its major) out over ``stable_major`` with the contract's plan; ``stable`` is the
    stable major's contract, kept in the state for serving (see :class:`RolloutState`)."""
    if stable is not None and (stable.name != candidate.name or stable.major_version != stable_major):
        raise RolloutRefusedError(f"the stable contract is {stable.name} major {stable.major_version}, expected "
                                  f"{candidate.name} major {stable_major}", contract=candidate.name)
    if candidate.major_version == stable_major:
        raise RolloutRefusedError(f"the candidate major {stable_major} is already the stable one",
                                  contract=candidate.name)
    if failure_limit < 1 or interval_s <= 0:
        raise RolloutRefusedError("failure limit must be >= 1 and the interval > 0", contract=candidate.name)
    plan = candidate.rollout
    state = RolloutState(rollout_id=f"{candidate.name}-v{candidate.major_version}-{uuid.uuid4().hex[:8]}",
                         contract=candidate.name, stable_major=stable_major,
                         candidate_major=candidate.major_version, steps=tuple(plan.steps),
                         dwell_s=plan.dwell.total_seconds(), interval_s=interval_s, failure_limit=failure_limit,
                         phase="shadow", step_index=0, step_started_at=now, started_at=now,
                         stable_contract=stable.model_dump(mode="json", by_alias=True) if stable else None)
    state = state.at_step(0, now)
    stored = store.create(state, _entry(state, "start", actor, now, f"v{stable_major} -> v{state.candidate_major}, "
                                        f"steps {list(state.steps)}, dwell {state.dwell_s:.0f}s"))
    metrics.TRANSITIONS.labels(state.contract, "start").inc()
    _publish(stored)
    return stored


def _manual(store: RolloutStore, contract: str, change: Callable[[RolloutState], RolloutState], kind: str,
            detail: str, now: float) -> RolloutState:
    """Apply a person's decision, retrying the compare-and-set until it lands (a person always wins)."""
    for _ in range(50):
        state = store.current(contract)
        if state is None or not state.active:
            raise RolloutRefusedError(f"contract {contract} has no active rollout", contract=contract,
                                      hint="`feature-platform rollout status` lists rollouts")
        changed = change(state)
        try:
            stored = store.update(changed, _entry(changed, kind, "user", now, detail))
        except RolloutConflictError:
            continue
        metrics.TRANSITIONS.labels(contract, kind).inc()
        _publish(stored)
        return stored
    raise RolloutConflictError(f"rollout of {contract} kept changing; try again", contract=contract)


def promote(store: RolloutStore, contract: str, *, now: float, detail: str = "promoted by hand") -> RolloutState:
    """Make the candidate the stable major at once (weight 100)."""
    return _manual(store, contract, lambda s: replace(s, phase="promoted", step_started_at=now), "promote", detail,
                   now)


def abort(store: RolloutStore, contract: str, *, reason: str, now: float) -> RolloutState:
    """Send every entity back to the stable major at once, recording ``reason``."""
    if not reason.strip():
        raise RolloutRefusedError("an abort needs a reason", contract=contract)
    return _manual(store, contract, lambda s: replace(s, phase="aborted", reason=reason, step_started_at=now),
                   "abort", reason, now)


class Controller:
    """Evaluates every active rollout once its interval has passed (:meth:`tick`); :meth:`run` loops forever."""

    def __init__(self, store: RolloutStore, measure: GateMeasure, *, now: Callable[[], float] = time.time) -> None:
        self.store, self.measure, self.now = store, measure, now
        self.next_due: float | None = None

    def tick(self) -> list[RolloutState]:
        """One pass over the store; returns the rollouts it changed. Remembers when the next evaluation is due
        (:attr:`next_due`)."""
        changed, self.next_due = [], None
        for state in self.store.all_current():
            if not state.active:
                continue
            now = self.now()
            if state.last_evaluated_at is not None and now - state.last_evaluated_at < state.interval_s:
                self._due(state.last_evaluated_at + state.interval_s)
                continue
            self._due(now + state.interval_s)
            try:
                changed.append(self._evaluate(state, now))
            except RolloutConflictError:
                continue  # someone (a person) changed it meanwhile: their decision stands; re-read next tick
        return changed

    def _evaluate(self, state: RolloutState, started: float) -> RolloutState:
        measuring = self.now()
        gates = dict(self.measure(state))
        took = self.now() - measuring
        now = max(started, self.now())  # the decision's time: after the measurement, just before the write
        failures = {name: (state.failures.get(name, 0) + 1 if gate.verdict == "fail" else 0)
                    for name, gate in gates.items()}
        summary = ", ".join(f"{g.gate} {g.verdict}" for g in gates.values())
        if took > state.interval_s:  # the next evaluation starts late: the time to abort grows by as much
            log.warning("rollout %s: measuring the gates took %.2f s, over the %.2f s interval", state.rollout_id,
                        took, state.interval_s)
            summary += f"; measuring took {took:.2f}s, over the {state.interval_s:g}s interval"
        evaluated = replace(state, failures=failures, last_evaluated_at=started)
        tripped = [gates[name] for name, count in failures.items() if count >= state.failure_limit]
        _publish(state, gates)
        if tripped:
            reason = "; ".join(f"gate {g.gate} failed {failures[g.gate]} consecutive evaluations: {g.value} > "
                               f"{g.limit} ({g.detail})" for g in tripped)
            aborted = replace(evaluated, phase="aborted", reason=reason, step_started_at=now)
            stored = self.store.update(aborted, _entry(aborted, "abort", "controller", now, reason, gates))
            metrics.TRANSITIONS.labels(state.contract, "abort").inc()
        elif all(g.verdict == "pass" for g in gates.values()) and now - state.step_started_at >= state.dwell_s:
            if state.step_index + 1 < len(state.steps):
                moved = evaluated.at_step(state.step_index + 1, now)
                kind, detail = "step", f"{state.weight}% -> {moved.weight}% after {now - state.step_started_at:.0f}s"
            else:
                moved = replace(evaluated, phase="promoted", step_started_at=now)
                kind, detail = "promote", f"100% held {now - state.step_started_at:.0f}s with every gate passing"
            stored = self.store.update(moved, _entry(moved, kind, "controller", now, detail, gates))
            metrics.TRANSITIONS.labels(state.contract, kind).inc()
        else:
            stored = self.store.update(evaluated, _entry(evaluated, "evaluate", "controller", now, summary, gates))
        _publish(stored, gates)
        return stored

    def _due(self, at: float) -> None:
        self.next_due = at if self.next_due is None else min(self.next_due, at)

    def run(self, *, tick_s: float = 1.0, stop: Callable[[], bool] = lambda: False) -> None:
        """Tick until ``stop()`` says so: at the moment the next evaluation is due, and at least every ``tick_s``
        seconds (to see rollouts started meanwhile), so evaluations keep their interval rather than drifting by up to
        a tick each time."""
        while not stop():
            self.tick()
            wait = tick_s if self.next_due is None else min(tick_s, max(0.0, self.next_due - self.now()))
            time.sleep(max(wait, 0.005))
