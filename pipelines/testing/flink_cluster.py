"""A real standalone Flink cluster (one JobManager, TaskManagers on demand) on 127.0.0.1, for tests and benchmarks.

Why: cluster mode (docs/cluster.md) must be tested against a real cluster, not the in-process mini-cluster. PyFlink's
wheel is a complete Flink distribution (``bin/``, ``lib/``, ``conf/``), so ``FLINK_HOME`` is the ``pyflink`` package
folder; the configuration, logs and temporary files live in a folder of our own (``FLINK_CONF_DIR``,
``FLINK_LOG_DIR``), never inside the installed package.

Each process is started with ``bin/jobmanager.sh start-foreground`` / ``bin/taskmanager.sh start-foreground``, which
``exec`` the JVM: the child we start *is* the JVM, so we own its pid and can stop it (SIGTERM), or SIGKILL a
TaskManager to test recovery, without pid files or ``stop-cluster.sh`` (which stops every cluster of the user).

Usage::

    with flink_cluster(tmp_path) as cluster:
        settings = Settings(flink_target="remote", flink_rest_address=cluster.rest_url)
        ...
        cluster.kill_taskmanager()        # SIGKILL, as a lost machine
        cluster.start_taskmanager()       # a fresh one registers; the job restarts from its checkpoint

The processes get a bare environment (``PATH=/usr/bin:/bin``, no virtualenv, no ``python.*`` keys): the platform's
jobs are pure SQL, and the tests prove it by running them on TaskManagers that have no Python with PyFlink.

Ports are free loopback ports picked at start (REST, JobManager RPC). Heartbeats are short (1 s interval, 15 s
timeout; heartbeats refused by a killed process count as failures at once) so the loss of a TaskManager is noticed in
seconds instead of Flink's default 10 s / 50 s, while the timeout stays long enough for a machine under heavy load.
Every process is stopped on exit, also when the test fails; each also gets SIGTERM if the process that started it
dies (:mod:`.lifetime`).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pipelines.errors import PlatformError, Terminal
from pipelines.jvm.java import ensure_java_home
from pipelines.testing.kafka_broker import free_port
from pipelines.testing.lifetime import parent_death_hook

_LOG4J_FILES = ("log4j-console.properties", "log4j.properties", "log4j-cli.properties")


class FlinkClusterError(PlatformError, Terminal):
    """A cluster process did not start or become ready; the message carries the end of its log."""


def flink_home() -> Path:
    """The Flink distribution inside the installed PyFlink package (``bin/``, ``lib/``, ``conf/``)."""
    import pyflink

    return Path(pyflink.__file__).resolve().parent


def cluster_configuration(*, rest_port: int, rpc_port: int, tmp_dir: Path, slots: int = 2,
                          jobmanager_memory: str = "1024m", taskmanager_memory: str = "1536m",
                          python: str | None = None) -> dict[str, Any]:
    """The ``config.yaml`` keys of a loopback cluster (flat keys; Flink 2 reads them beside nested ones).

    ``python`` is the interpreter for Python UDF workers (``python.executable``/``python.client.executable``); the
    platform's jobs are pure SQL and need none, so by default the keys are left out.
    """
    keys: dict[str, Any] = {
        "jobmanager.rpc.address": "127.0.0.1",
        "jobmanager.rpc.port": rpc_port,
        "jobmanager.bind-host": "127.0.0.1",
        "jobmanager.memory.process.size": jobmanager_memory,
        "jobmanager.execution.failover-strategy": "region",
        "taskmanager.bind-host": "127.0.0.1",
        "taskmanager.host": "127.0.0.1",
        "taskmanager.numberOfTaskSlots": slots,
        "taskmanager.memory.process.size": taskmanager_memory,
        "rest.address": "127.0.0.1",
        "rest.bind-address": "127.0.0.1",
        "rest.port": rest_port,
        "parallelism.default": slots,
        "io.tmp.dirs": str(tmp_dir),
        "heartbeat.interval": 1000,
        "heartbeat.timeout": 15000,
        # RPC asks inside the cluster (e.g. the dispatcher accepting a job) time out after 10 s by default; a job
        # submission on a machine with a load of 45 on 2 cores failed that way although the job was accepted.
        "pekko.ask.timeout": "60 s",
    }
    if python is not None:
        keys |= {"python.executable": python, "python.client.executable": python}
    return keys


@dataclass
class FlinkCluster:
    """A running cluster; :meth:`stop` ends every process it started and removes nothing but what it wrote."""

    work_dir: Path
    rest_port: int
    jobmanager: subprocess.Popen[bytes] | None = None
    taskmanagers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    _env: dict[str, str] = field(default_factory=dict)

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"

    @property
    def conf_dir(self) -> Path:
        return self.work_dir / "conf"

    @property
    def log_dir(self) -> Path:
        return self.work_dir / "log"

    def rest(self, path: str, timeout: float = 10.0) -> Any:
        """GET ``path`` from the cluster's REST API, parsed JSON (a busy JobManager may take seconds to answer)."""
        with urllib.request.urlopen(self.rest_url + path, timeout=timeout) as response:
            return json.load(response)

    def _start(self, script: str, name: str) -> subprocess.Popen[bytes]:
        log = (self.log_dir / f"{name}.out").open("ab")
        try:
            return subprocess.Popen([str(flink_home() / "bin" / script), "start-foreground"], env=self._env,
                                    stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True, preexec_fn=parent_death_hook())
        finally:
            log.close()

    def start_taskmanager(self, ready_timeout_s: float = 240.0) -> subprocess.Popen[bytes]:
        """Start one more TaskManager and wait until the JobManager counts it (its slots are then offered to jobs)."""
        expected = len(self.live_taskmanagers()) + 1
        process = self._start("taskmanager.sh", f"taskmanager-{len(self.taskmanagers) + 1}")
        self.taskmanagers.append(process)
        self._wait(lambda: self._registered_taskmanagers() >= expected, ready_timeout_s,
                   f"TaskManager {process.pid} to register", process)
        return process

    def live_taskmanagers(self) -> list[subprocess.Popen[bytes]]:
        return [process for process in self.taskmanagers if process.poll() is None]

    def kill_taskmanager(self) -> int:
        """SIGKILL the newest live TaskManager (no clean shutdown: a lost machine); return its pid."""
        (process, *_) = reversed(self.live_taskmanagers())
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        return process.pid

    def _registered_taskmanagers(self) -> int:
        try:
            return int(self.rest("/overview")["taskmanagers"])
        except (OSError, ValueError, KeyError):
            return -1

    def _wait(self, ready: Any, timeout_s: float, what: str, process: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise FlinkClusterError(f"the process waited for ({what}) exited with {process.returncode}; end of "
                                        f"its logs:\n{self.log_tail()}")
            if ready():
                return
            time.sleep(0.2)
        raise FlinkClusterError(f"timed out after {timeout_s:.0f}s waiting for {what}; end of the logs:\n"
                                f"{self.log_tail()}")

    def log_tail(self, chars: int = 3000) -> str:
        return "\n".join(f"--- {path.name}\n{path.read_text(errors='replace')[-chars:]}"
                         for path in sorted(self.log_dir.glob("*")) if path.is_file())

    def pids(self) -> dict[str, list[int]]:
        """The pids of the live processes: ``{"jobmanager": [...], "taskmanager": [...]}``."""
        jm = [self.jobmanager.pid] if self.jobmanager and self.jobmanager.poll() is None else []
        return {"jobmanager": jm, "taskmanager": [p.pid for p in self.live_taskmanagers()]}

    def stop(self, timeout_s: float = 20.0) -> None:
        """SIGTERM every live process (TaskManagers first), SIGKILL what is still there after ``timeout_s``."""
        processes = [*self.taskmanagers, *([self.jobmanager] if self.jobmanager else [])]
        for process in processes:
            if process.poll() is None:
                process.terminate()
        for process in processes:
            try:
                process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=timeout_s)


def start_flink_cluster(work_dir: Path, *, taskmanagers: int = 1, ready_timeout_s: float = 240.0,
                        **config: Any) -> FlinkCluster:
    """Write a conf folder under ``work_dir``, start a JobManager and ``taskmanagers`` TaskManagers; wait for them.

    ``config`` overrides keyword arguments of :func:`cluster_configuration`. Raises :class:`FlinkClusterError` (after
    stopping what was started) when a process exits or does not become ready in time.
    """
    home = flink_home()
    java_home = ensure_java_home()
    cluster = FlinkCluster(work_dir=work_dir, rest_port=free_port())
    for folder in (cluster.conf_dir, cluster.log_dir, work_dir / "tmp"):
        folder.mkdir(parents=True, exist_ok=True)
    bundled = yaml.safe_load((home / "conf" / "config.yaml").read_text())
    keys = {"env.java.opts.all": bundled["env"]["java"]["opts"]["all"],  # the --add-exports the JVMs need
            **cluster_configuration(rest_port=cluster.rest_port, rpc_port=free_port(), tmp_dir=work_dir / "tmp",
                                    **config)}
    (cluster.conf_dir / "config.yaml").write_text(yaml.safe_dump(keys, sort_keys=True))
    for name in _LOG4J_FILES:
        shutil.copy(home / "conf" / name, cluster.conf_dir / name)
    (cluster.conf_dir / "workers").write_text("127.0.0.1\n")
    (cluster.conf_dir / "masters").write_text(f"127.0.0.1:{cluster.rest_port}\n")
    # A bare environment: no virtualenv on PATH, no `python` command at all (Debian has only python3, without
    # PyFlink), so a job that needed Python on the TaskManagers would fail here instead of passing by accident.
    inherited = {key: os.environ[key] for key in ("HOME", "USER", "LANG", "LC_ALL", "TZ") if key in os.environ}
    cluster._env = {**inherited, "PATH": "/usr/bin:/bin", "FLINK_HOME": str(home),
                    "FLINK_CONF_DIR": str(cluster.conf_dir),
                    "FLINK_LOG_DIR": str(cluster.log_dir), "FLINK_PID_DIR": str(work_dir / "tmp"),
                    **({"JAVA_HOME": java_home} if java_home else {})}
    try:
        cluster.jobmanager = cluster._start("jobmanager.sh", "jobmanager")
        cluster._wait(lambda: cluster._registered_taskmanagers() >= 0, ready_timeout_s, "the JobManager's REST API",
                      cluster.jobmanager)
        for _ in range(taskmanagers):
            cluster.start_taskmanager(ready_timeout_s)
    except BaseException:  # failed or interrupted: never leave a JVM behind
        cluster.stop()
        raise
    return cluster


@contextmanager
def flink_cluster(work_dir: Path, **kwargs: Any) -> Iterator[FlinkCluster]:
    """:func:`start_flink_cluster`, every process stopped on exit (the logs stay in ``work_dir`` to read)."""
    cluster = start_flink_cluster(work_dir, **kwargs)
    try:
        yield cluster
    finally:
        cluster.stop()
