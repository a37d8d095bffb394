"""A server a test started goes away with the test process, even when that process is SIGKILLed (no teardown)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

_START_AND_WAIT = """
import sys, time
from pathlib import Path
from pipelines.testing.redis_server import RedisServer
server = RedisServer(Path(sys.argv[1]))
server.start()
print(server.process.pid, flush=True)
time.sleep(120)
"""


def _running(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "zombie" not in status.read_text().lower()


def test_a_redis_server_dies_with_the_process_that_started_it(tmp_path: Path) -> None:
    if shutil.which("redis-server") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("redis-server not installed (CI=true: this test must run)")
        pytest.skip("redis-server not installed")
    starter = subprocess.Popen([sys.executable, "-c", _START_AND_WAIT, str(tmp_path / "redis")],
                               stdout=subprocess.PIPE, text=True)
    assert starter.stdout is not None
    server_pid = int(starter.stdout.readline())
    assert _running(server_pid)
    starter.kill()
    starter.wait(timeout=10)
    deadline = time.monotonic() + 10
    while _running(server_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    still_running = _running(server_pid)
    if still_running:
        os.kill(server_pid, 9)  # never leave it behind, even when the test fails
    assert not still_running, "redis-server outlived the process that started it"
