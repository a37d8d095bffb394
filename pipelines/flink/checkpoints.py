"""Retained checkpoints: the configuration that keeps them, and finding the one a restarted job resumes from.

* Checkpoints are **externalized and retained on cancellation and failure**
  (``execution.checkpointing.externalized-checkpoint-retention: RETAIN_ON_CANCELLATION``), the newest one only
  (``execution.checkpointing.num-retained: 1``). A SIGKILLed process never cancels anything, so the newest completed
  checkpoint simply stays on disk. A job that FINISHES discards its checkpoints: its output is complete by then.
* A restart sets ``execution.state-recovery.path`` to the newest ``<checkpoint dir>/<job id>/chk-<n>`` holding a
  ``_metadata`` file (a completed checkpoint; a ``chk-<n>`` without one was in progress). The restored job has a new
  job id; Flink's default claim mode (NO_CLAIM) leaves the checkpoint it restored from alone, so an earlier retained
  checkpoint survives until a newer one completes.
* Restoring needs the same job graph: the same generated SQL, the same contracts and paths (the run folder).
"""

from __future__ import annotations

from pathlib import Path

RETENTION = "RETAIN_ON_CANCELLATION"


def checkpoint_configuration(restore_from: Path | None) -> dict[str, str]:
    """The keys that retain checkpoints and, when ``restore_from`` is given, resume from it."""
    config = {
        "execution.checkpointing.externalized-checkpoint-retention": RETENTION,
        "execution.checkpointing.num-retained": "1",
    }
    if restore_from is not None:
        config["execution.state-recovery.path"] = restore_from.resolve().as_uri()
    return config


def latest_checkpoint(checkpoint_dir: Path) -> Path | None:
    """The newest completed checkpoint (``chk-<n>`` folder with ``_metadata``) of any job under ``checkpoint_dir``."""
    if not checkpoint_dir.exists():
        return None
    completed = []
    for metadata in checkpoint_dir.glob("*/chk-*/_metadata"):
        try:
            completed.append((metadata.stat().st_mtime_ns, int(metadata.parent.name.removeprefix("chk-")),
                              metadata.parent))
        except (OSError, ValueError):  # removed while we looked (subsumed), or not a checkpoint folder
            continue
    return max(completed)[2] if completed else None


def latest_savepoint(savepoint_dir: Path) -> Path | None:
    """The newest completed savepoint (a ``savepoint-*`` folder with ``_metadata``) under ``savepoint_dir``."""
    if not savepoint_dir.exists():
        return None
    completed = []
    for metadata in savepoint_dir.glob("savepoint-*/_metadata"):
        try:
            completed.append((metadata.stat().st_mtime_ns, metadata.parent))
        except OSError:
            continue
    return max(completed)[1] if completed else None


def latest_restore_point(checkpoint_dir: Path, savepoint_dir: Path) -> Path | None:
    """Where a restarted continuous job resumes: the newer of the latest retained checkpoint (after a crash) and the
    latest savepoint (after a clean stop, whose job discarded its checkpoints on finishing)."""
    found = [path for path in (latest_checkpoint(checkpoint_dir), latest_savepoint(savepoint_dir)) if path]
    return max(found, key=lambda path: (path / "_metadata").stat().st_mtime_ns) if found else None
