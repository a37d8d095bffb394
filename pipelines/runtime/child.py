"""The code a worker process runs: pin itself, report what it sees, then serve calls over its pipe.

Kept in its own module with standard-library imports only, because a spawned process imports it before doing any
work: every heavy import here would be paid once per worker start.
"""

from __future__ import annotations

import os
import pickle
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from pipelines.runtime.kinds import Terminal


class RemoteError(Terminal, RuntimeError):
    """An exception from a worker process that could not be sent back as itself (not picklable)."""


def worker_main(conn: Connection, fn: Callable[[Any], Any], cpu: int | None) -> None:
    """A worker process: pin, report the affinity seen from inside, then serve calls until told to stop."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent owns Ctrl-C and SIGTERM handling; it stops us
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    conn.send(("ready", os.getpid(), sorted(os.sched_getaffinity(0))))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        try:
            result = fn(message)
        except BaseException as error:
            text = traceback.format_exc()
            try:
                payload = pickle.loads(pickle.dumps(error))
            except Exception:
                payload = RemoteError(f"{type(error).__qualname__}: {error}")
            conn.send(("error", payload, text))
        else:
            conn.send(("ok", result, None))
