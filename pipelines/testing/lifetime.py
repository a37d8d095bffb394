"""Servers started for tests end with the process that started them, even when it is killed without clean-up.

A test run stopped by SIGKILL or a time-out (``timeout`` sends SIGTERM, pytest then skips fixture teardown) would
leave its Kafka broker or redis-server running, holding ports and memory for the next run (seen: a broker orphaned
for 35 minutes after a timed-out run). On Linux the kernel can send the child a signal when its parent dies
(``PR_SET_PDEATHSIG``); :func:`die_with_parent` asks for SIGTERM, a clean shutdown. Elsewhere it does nothing.

The kernel ties that signal to the *thread* that started the child, not the process: a server started from a helper
thread (a test restarting Redis from a background thread) would be stopped as soon as that thread ends. So
:func:`parent_death_hook` asks for it only on the main thread; a server started elsewhere is stopped by its owner.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import signal
import sys
import threading
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """``preexec_fn`` for ``subprocess.Popen``: the child gets SIGTERM when the process that started it dies."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def parent_death_hook() -> Callable[[], None] | None:
    """The ``preexec_fn`` to start a test server with: :func:`die_with_parent` on the main thread, else None."""
    return die_with_parent if threading.current_thread() is threading.main_thread() else None
