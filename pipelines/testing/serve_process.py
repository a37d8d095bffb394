"""A real ``feature-platform serve`` process on 127.0.0.1 for tests and benchmarks: started with its settings as
``FP_`` variables, waited for until ``GET /ready`` answers 200, stopped with SIGTERM (then SIGKILL after a bound).

Usage::

    server = ServeProcess({"FP_DATA_DIR": str(data_dir), "FP_SERVE__WORKERS": "1"})
    server.start()
    try:
        requests.post(server.url + "/get-online-features", json=body)
    finally:
        code = server.stop()
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from pipelines.testing.lifetime import parent_death_hook
from pipelines.testing.redis_server import free_port

CLI = Path(sys.executable).parent / "feature-platform"


class ServeProcess:
    """``feature-platform serve`` with ``env`` added to this process's environment, on a free port."""

    def __init__(self, env: dict[str, str], *, port: int | None = None, log: Path | None = None) -> None:
        self.port = port or free_port()
        self.env = {**os.environ, **env, "FP_SERVE__PORT": str(self.port), "FP_SERVE__HOST": "127.0.0.1"}
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 90.0) -> None:
        """Start and wait until ``/ready`` says 200 (contracts loaded, store reachable); raise with the log if not."""
        out = self.log.open("wb") if self.log is not None else subprocess.DEVNULL
        self.process = subprocess.Popen([str(CLI), "serve"], env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                        preexec_fn=parent_death_hook())
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"feature-platform serve exited with {self.process.returncode}: {self._log()}")
            try:
                with urllib.request.urlopen(self.url + "/ready", timeout=2) as response:
                    if response.status == 200:
                        return
            except urllib.error.HTTPError as error:
                last = error.read().decode(errors="replace")
            except OSError as error:
                last = str(error)
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"feature-platform serve not ready after {timeout}s: {last} {self._log()}")

    def _log(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log is not None and self.log.exists() else ""

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM and wait; SIGKILL after ``timeout``. Returns the exit code (None if it never ran)."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        return self.process.returncode
