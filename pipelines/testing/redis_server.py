"""A real ``redis-server`` on 127.0.0.1 for tests and benchmarks (Debian's package; ``./dev test`` installs it).

It runs without persistence (a kill loses everything) on a free port, and a test can SIGKILL and restart it on the
same port to play an outage. Every wait is bounded; :meth:`RedisServer.stop` ends the process.

Usage::

    server = RedisServer(tmp_path / "redis")
    server.start()
    try:
        store = redis_feature_store(settings, server.url)
    finally:
        server.stop()
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.config import Settings
from pipelines.testing.lifetime import parent_death_hook

if TYPE_CHECKING:
    from feast import FeatureStore

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RedisServer:
    """A real ``redis-server`` on 127.0.0.1 and a free port, without persistence (a kill loses everything), that a
    test can SIGKILL and restart on the same port. Every wait is bounded."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Feast's connection string."""
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        import redis

        self.workdir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir), "--protected-mode", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=parent_death_hook())
        deadline = time.monotonic() + timeout
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=0.5)
        while True:
            try:
                client.ping()
                client.close()
                return
            except redis.ConnectionError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start on port {self.port}") from None
                time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: no shutdown, no save."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


def redis_feature_store(settings: Settings, url: str) -> FeatureStore:
    """The project's Feast store on ``settings``' data folder, with Feast's stock Redis online store at ``url``."""
    from feast import FeatureStore
    from feast.repo_config import RepoConfig

    from pipelines.feast_sync.store import feast_dir, repo_config_dict

    feast_dir(settings).mkdir(parents=True, exist_ok=True)
    config = {**repo_config_dict(settings), "online_store": {"type": "redis", "connection_string": url}}
    return FeatureStore(repo_path=str(settings.feature_repo_dir),
                        config=RepoConfig(repo_path=settings.feature_repo_dir, **config))
