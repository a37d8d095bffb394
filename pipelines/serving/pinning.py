"""Pin each worker process to its own CPU: the worker claims the lowest free slot (a lock file under the server's run
folder, held for its life, so a respawned worker takes the slot its predecessor left) and binds to that allowed CPU.

Why: with one event loop per worker and one worker per core, a worker that stays on its core keeps its caches warm
and never competes with a sibling for the same core (DESIGN: CPU-bound work in pinned processes).
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

_HELD: list[int] = []  # the slot's lock file stays open (and locked) for the process's life


def claim_cpu(run_dir: Path, *, slots: int = 64) -> int | None:
    """Pin this process to the CPU of the lowest free slot; returns the CPU, or None when no slot is free."""
    allowed = sorted(os.sched_getaffinity(0))
    for slot in range(slots):
        fd = os.open(run_dir / f"cpu-slot-{slot}", os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        _HELD.append(fd)
        cpu = allowed[slot % len(allowed)]
        os.sched_setaffinity(0, {cpu})
        return cpu
    return None
