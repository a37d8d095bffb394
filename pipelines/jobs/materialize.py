"""``feature-platform materialize``: reload the online store from the Delta tables, for any event-time range.

The recovery path (an online store that was wiped, restored from an old backup, or pointed at a new Redis): for each
contract (or the one named), the newest row per entity of the Delta snapshot, restricted to ``window_end`` in
``[start, end]`` when given, is written through the ``online-load`` stage (rate limit and concurrency from
``settings.stage("online-load")``). Unlike Feast's ``materialize-incremental`` nothing starts at "now − TTL": without
bounds the whole table is reloaded and the store then equals the snapshot; with bounds values only ever move forward.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pipelines.config import Settings
from pipelines.contracts.valid import select_contracts
from pipelines.errors import UsageError
from pipelines.feast_sync.online import LoadResult, OnlineLoadError, materialize, open_online_store
from pipelines.feast_sync.repo import contracts_with_delta_paths
from pipelines.feast_sync.store import apply_repo, is_applied
from pipelines.jobs.progress import Progress, silent
from pipelines.runtime import StageError

#: Per table: (table name) → a callback ``(done, total)`` for its load, or None.
TableProgress = Callable[[str], Callable[[int, int], None] | None]


@dataclass
class MaterializeSummary:
    """What a reload did, per table, and what it skipped (no Delta table yet)."""

    online_store: str
    start: datetime | None
    end: datetime | None
    results: list[LoadResult] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    elapsed_seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "online_store": self.online_store,
            "start": self.start.isoformat() if self.start else None,
            "end": self.end.isoformat() if self.end else None,
            "tables": [{"table": r.table_name, "delta_version": r.delta_version, "rows_in_range": r.snapshot_rows,
                        "entities": r.rows_loaded, "written": r.rows_written, "kept_newer": r.rows_skipped,
                        "rows_per_second": round(r.rows_per_second), "restarts": r.restarts} for r in self.results],
            "skipped": self.skipped,
            "elapsed_seconds": round(self.elapsed_seconds, 3),
        }


def run_materialize(settings: Settings, *, contract: str | None = None, start: datetime | None = None,
                    end: datetime | None = None, progress: Progress = silent,
                    table_progress: TableProgress | None = None) -> MaterializeSummary:
    """Reload the online store from Delta (see the module docstring); applies the Feast repository when needed.

    Raises :class:`~pipelines.errors.UsageError` for a bad range or an unknown contract, and
    :class:`~pipelines.feast_sync.online.OnlineLoadError` when the store stays unreachable.
    """
    if start is not None and end is not None and start > end:
        raise UsageError(f"--start {start.isoformat()} is after --end {end.isoformat()}")
    started = time.perf_counter()
    contracts = contracts_with_delta_paths(settings)
    chosen = select_contracts(contracts, contract, lambda item: item[0])
    store = open_online_store(settings)
    if not is_applied(store, contracts):
        apply_repo(store, contracts)
    summary = MaterializeSummary(settings.online_store, start, end)
    for item, path in chosen:
        if not path.exists():
            progress(f"{item.table_name}: no Delta table at {path}; skipped")
            summary.skipped.append(item.table_name)
            continue
        advance = table_progress(item.table_name) if table_progress else None
        try:
            summary.results.append(materialize(store, item, path, start=start, end=end, progress=advance))
        except StageError as error:  # the online-load stage gave up: name the table and the way back
            raise OnlineLoadError(f"loading the online store stopped: {error}", table=item.table_name,
                                  hint=f"check {settings.online_store}, then re-run `feature-platform materialize "
                                       f"--contract {item.name}` (Delta still holds every value)") from error
    summary.elapsed_seconds = time.perf_counter() - started
    return summary
