"""``feature-platform training-set``: a point-in-time-correct training set for one contract, from its Delta table.

Reads an entity file (the contract's join keys, a timestamp per row, any label columns), joins every feature of the
contract as of each row's timestamp through Feast's ``get_historical_features`` on the Delta offline store
(:mod:`pipelines.feast_sync.training`), and writes the result as Parquet or CSV.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.config import Settings
from pipelines.contracts.model import Contract
from pipelines.errors import UsageError
from pipelines.feast_sync.repo import contracts_with_delta_paths
from pipelines.feast_sync.store import apply_repo, is_applied, open_store
from pipelines.feast_sync.training import TrainingSet, build_training_set, read_entity_file, write_training_set
from pipelines.jobs.progress import Progress, silent


@dataclass(frozen=True)
class TrainingSetSummary:
    contract: Contract
    result: TrainingSet
    out: Path
    elapsed_seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "contract": self.contract.name,
            "feature_view": self.contract.table_name,
            "delta_version": self.result.delta_version,
            "rows": self.result.rows,
            "features": list(self.result.feature_names),
            "null_counts": self.result.null_counts(),
            "ttl_seconds": self.contract.serving.ttl.total_seconds(),
            "out": str(self.out.resolve()),
            "join_seconds": round(self.result.elapsed_seconds, 3),
            "elapsed_seconds": round(self.elapsed_seconds, 3),
        }


def pick_contract(name: str, contracts: list[tuple[Contract, Path]]) -> Contract:
    """The contract called ``name`` (its only major version) or ``<name>_v<major>``; errors list what exists."""
    by_table = {c.table_name: c for c, _ in contracts}
    if name in by_table:
        return by_table[name]
    majors = [c for c, _ in contracts if c.name == name]
    if len(majors) == 1:
        return majors[0]
    if majors:
        raise UsageError(f"{name} has several major versions: pick one of "
                         f"{', '.join(sorted(c.table_name for c in majors))}", hint="pass --contract <name>_v<major>")
    raise UsageError(f"no contract {name!r}; known: {', '.join(sorted(by_table))}",
                     hint="pass --contract with one of those")


def run_training_set(settings: Settings, *, entities: Path, contract: str, out: Path,
                     timestamp_column: str = "event_timestamp", progress: Progress = silent) -> TrainingSetSummary:
    """Join every feature of ``contract`` point-in-time onto the rows of ``entities``; write ``out``."""
    started = time.perf_counter()
    contracts = contracts_with_delta_paths(settings)
    chosen = pick_contract(contract, contracts)
    frame = read_entity_file(entities, text_columns=chosen.entity.join_keys)
    store = open_store(settings)
    if not is_applied(store, contracts):
        applied = apply_repo(store, contracts)
        progress(f"feast: registry updated from the contracts ({len(applied.changes)} change(s))")
    progress(f"joining {len(frame):,} entity rows with {chosen.table_name}")
    result = build_training_set(store, chosen, frame, timestamp_column=timestamp_column)
    written = write_training_set(result.table, out)
    return TrainingSetSummary(chosen, result, written, time.perf_counter() - started)
