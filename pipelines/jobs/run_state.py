"""``run.json``: a run's own state beside the commit ledger: its Flink attempts and whether the Flink job finished.

A resumed run reads it to know which checkpoint the last attempt restored from, which JVM it left behind (stopped
before the restart, :func:`pipelines.flink.running.stop_orphaned_jvm`), and whether Flink had already finished (then a
restart only commits, it does not run Flink again). Written atomically, like the ledger's records.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pipelines.delta.ledger import write_json_atomically


@dataclass
class FlinkAttempt:
    """One start of the Flink job within a run."""

    number: int
    started_at: str
    restored_from: str | None = None
    job_id: str | None = None
    jvm_pid: int | None = None
    source_records_read: int | None = None  # the source operators' numRecordsOut, last sample


@dataclass
class RunState:
    """``run.json``: the run's attempts and whether its Flink job has finished."""

    run_id: str
    flink_finished: bool = False
    attempts: list[FlinkAttempt] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)  # last Flink metrics sample (watermark, lag)
    #: Per Kafka source: the exact ``start`` and ``stop`` offsets per partition (as text keys) the run pinned on its
    #: first attempt, so a resumed run reads (and counts) exactly the same records whatever was produced since.
    pinned_offsets: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)


def state_path(run_dir: Path) -> Path:
    return run_dir / "ledger" / "run.json"


def load_run_state(run_dir: Path, run_id: str) -> RunState:
    """The run's state, or a fresh one when the run has not started yet."""
    path = state_path(run_dir)
    if not path.exists():
        return RunState(run_id=run_id)
    raw = json.loads(path.read_text(encoding="utf-8"))
    attempts = [FlinkAttempt(**attempt) for attempt in raw.pop("attempts", [])]
    return RunState(**raw, attempts=attempts)


def save_run_state(run_dir: Path, state: RunState) -> None:
    write_json_atomically(state_path(run_dir), asdict(state))
