"""What the ``rollout`` commands do, as library calls on the configured store (the CLI only renders them).

``start`` checks what it can before anything is written: the contract exists with the requested major, the
candidate's Delta table exists (the stream computes both majors before a rollout starts) and so does the stable one.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from pipelines.config import Settings
from pipelines.contracts.load import load_contract
from pipelines.contracts.model import Contract
from pipelines.contracts.valid import load_valid_contracts
from pipelines.delta.tables import table_version
from pipelines.rollout import controller
from pipelines.rollout.errors import RolloutRefusedError
from pipelines.rollout.gates import HealthGates
from pipelines.rollout.state import RolloutState
from pipelines.rollout.store import RolloutStore, open_rollout_store


def open_store(settings: Settings) -> RolloutStore:
    return open_rollout_store(settings.rollout_store, settings.data_dir, settings.redis_url)


def contract_at_major(settings: Settings, name: str, major: int) -> Contract:
    """The contract file named ``name``, which must be at ``major`` (the candidate is the version in the repo)."""
    found = [c for c in load_valid_contracts(settings.contracts_dir) if c.name == name]
    if not found:
        raise RolloutRefusedError(f"no contract named {name} in {settings.contracts_dir}", contract=name)
    contract = found[0]
    if contract.major_version != major:
        raise RolloutRefusedError(f"contract {name} is at major {contract.major_version}, not {major}",
                                  contract=name, hint="merge the new major first; the rollout goes to it")
    return contract


def start_rollout(settings: Settings, store: RolloutStore, name: str, to_major: int, *, from_major: int | None = None,
                  interval_s: float = controller.DEFAULT_INTERVAL_S,
                  failure_limit: int = controller.DEFAULT_FAILURE_LIMIT, now: float | None = None,
                  stable_contract: Path | None = None) -> RolloutState:
    """Start the rollout of ``name`` to ``to_major`` (from ``from_major``, default: the one before it).
    ``stable_contract`` is the stable major's contract file (e.g. ``git show HEAD^:contracts/<name>.yaml``), which
    serving needs to keep serving that major once the repository holds only the new one."""
    candidate = contract_at_major(settings, name, to_major)
    stable = from_major if from_major is not None else to_major - 1
    stable_model = load_contract(stable_contract).contract if stable_contract is not None else None
    for major, role in ((to_major, "candidate"), (stable, "stable")):
        path = settings.delta_table_path(f"{name}_v{major}")
        if table_version(path) is None:
            raise RolloutRefusedError(f"the {role} table {name}_v{major} does not exist at {path}", contract=name,
                                      hint="run the stream (or a backfill) for both majors first")
    return controller.start(store, candidate, stable_major=stable, now=time.time() if now is None else now,
                            interval_s=interval_s, failure_limit=failure_limit, stable=stable_model)


def health_gates(settings: Settings) -> HealthGates:
    """The controller's default gate measure: the candidate contract is the repository's file at that major."""
    return HealthGates(settings, lambda state: contract_at_major(settings, state.contract, state.candidate_major))


def status(store: RolloutStore, now: float | None = None, history: int = 20) -> list[dict[str, Any]]:
    """Every contract's newest rollout: state, time in step, the last gate values and the newest audit entries."""
    moment = time.time() if now is None else now
    result = []
    for state in store.all_current():
        entries = store.audit(state.contract, history)
        gates = next((e.gates for e in reversed(entries) if e.gates), {})
        result.append({**state.to_dict(), "time_in_step_s": round(moment - state.step_started_at, 1),
                       "gates": gates, "history": [e.to_dict() for e in entries]})
    return result


def stable_contracts_in_rollout(settings: Settings) -> list[Contract]:
    """The stable majors of active rollouts (kept in their states): ``health`` checks them beside the repository's
    contracts. Nothing when there is no rollout store yet (reading must not create one)."""
    if settings.rollout_store == "sqlite" and not (settings.data_dir / "rollout" / "rollouts.sqlite").exists():
        return []
    store = open_store(settings)
    try:
        return [Contract.model_validate(state.stable_contract) for state in store.all_current()
                if state.active and state.stable_contract]
    finally:
        store.close()
