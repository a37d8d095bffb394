"""A real single-node Kafka 4.x broker (KRaft: combined broker + controller) on 127.0.0.1, for tests and local runs.

Why: the Kafka path must be tested against a real broker, and the development machines have no Docker. Kafka is Java,
so it runs from its Maven Central jars (``tools/jars/kafka-broker/pom.xml``, fetched by :mod:`pipelines.jvm.jars`)
with the same two main classes its shell scripts call: ``kafka.tools.StorageTool format`` (the
``kafka-storage.sh format`` step: writes the cluster id and the bootstrap metadata into the log folder) and
``kafka.Kafka <server.properties>`` (the server).

Usage::

    with kafka_broker(tmp_path) as broker:
        produce_lines(broker.bootstrap_servers, "transactions", lines)

Free ports are picked on 127.0.0.1, readiness is a bounded wait for the broker to answer a metadata request, and
:meth:`KafkaBroker.stop` terminates the JVM (killing it after a bounded wait) and removes its folders.
"""

from __future__ import annotations

import base64
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pipelines.errors import PlatformError, Terminal
from pipelines.jvm.jars import KAFKA_BROKER, fetch_jars
from pipelines.jvm.java import ensure_java_home
from pipelines.testing.lifetime import parent_death_hook

_SERVER_CLASS = "kafka.Kafka"
_STORAGE_TOOL_CLASS = "kafka.tools.StorageTool"


class KafkaBrokerError(PlatformError, Terminal):
    """The broker did not format, start or become ready; the message carries the end of its log."""


@dataclass
class KafkaBroker:
    """A running broker; ``stop()`` ends it and removes ``work_dir``."""

    bootstrap_servers: str
    controller_port: int
    work_dir: Path
    process: subprocess.Popen[bytes]

    @property
    def log_file(self) -> Path:
        return self.work_dir / "broker.log"

    def stop(self, timeout_s: float = 20.0) -> None:
        """Terminate the JVM (SIGTERM: a clean shutdown), kill it if it is still there after ``timeout_s``."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=timeout_s)
        shutil.rmtree(self.work_dir, ignore_errors=True)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def server_properties(node_id: int, broker_port: int, controller_port: int, log_dir: Path) -> str:
    """A single combined node: small, fast settings for one machine (one replica, no rebalance delay)."""
    settings = {
        "process.roles": "broker,controller",
        "node.id": str(node_id),
        "controller.quorum.voters": f"{node_id}@127.0.0.1:{controller_port}",
        "listeners": f"PLAINTEXT://127.0.0.1:{broker_port},CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{broker_port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(log_dir),
        "num.partitions": "1",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
    }
    return "".join(f"{key}={value}\n" for key, value in settings.items())


def start_kafka_broker(work_dir: Path, *, ready_timeout_s: float = 90.0, heap: str = "512m") -> KafkaBroker:
    """Format a fresh log folder under ``work_dir`` and start a broker on free loopback ports; wait until it answers.

    Raises :class:`KafkaBrokerError` (after stopping what was started) when it does not become ready in time, and
    :class:`pipelines.jvm.jars.JarFetchError` when the jars cannot be fetched.
    """
    classpath = ":".join(str(jar) for jar in fetch_jars(KAFKA_BROKER))
    java_home = ensure_java_home()
    java = str(Path(java_home) / "bin" / "java") if java_home else "java"
    work_dir.mkdir(parents=True, exist_ok=True)
    broker_port, controller_port = free_port(), free_port()
    properties = work_dir / "server.properties"
    properties.write_text(server_properties(1, broker_port, controller_port, work_dir / "logs"))
    cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    jvm = [java, f"-Xmx{heap}", "-XX:+UseG1GC", "-Djava.awt.headless=true", "-cp", classpath]
    # ``--cluster-id=<id>``, not ``-t <id>``: a random id may start with "-", which argparse4j takes for an option
    formatted = subprocess.run([*jvm, _STORAGE_TOOL_CLASS, "format", f"--cluster-id={cluster_id}",
                                "--config", str(properties)],
                               capture_output=True, text=True, timeout=120, check=False)
    if formatted.returncode != 0:
        raise KafkaBrokerError(f"kafka storage format failed (exit {formatted.returncode}):\n"
                               f"{(formatted.stdout + formatted.stderr)[-3000:]}")
    with (work_dir / "broker.log").open("wb") as log:
        process = subprocess.Popen([*jvm, _SERVER_CLASS, str(properties)], stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True,
                                   preexec_fn=parent_death_hook())
    broker = KafkaBroker(f"127.0.0.1:{broker_port}", controller_port, work_dir, process)
    try:
        _wait_until_ready(broker, ready_timeout_s)
    except Exception as error:
        tail = broker.log_file.read_text(errors="replace")[-3000:] if broker.log_file.exists() else ""
        broker.stop()
        raise KafkaBrokerError(f"Kafka broker on {broker.bootstrap_servers} not ready within {ready_timeout_s:.0f}s "
                               f"({error}); end of its log:\n{tail}") from error
    except BaseException:  # interrupted: never leave the JVM behind
        broker.stop()
        raise
    return broker


@contextmanager
def kafka_broker(work_dir: Path, **kwargs: float | str) -> Iterator[KafkaBroker]:
    """:func:`start_kafka_broker`, stopped (and its folder removed) on exit."""
    broker = start_kafka_broker(work_dir, **kwargs)  # type: ignore[arg-type]
    try:
        yield broker
    finally:
        broker.stop()


def _wait_until_ready(broker: KafkaBroker, timeout_s: float) -> None:
    from confluent_kafka.admin import AdminClient  # only the Kafka path pays for the import

    admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers, "socket.connection.setup.timeout.ms": 1000,
                         "log_level": 2})  # refused connections while it starts are expected, not worth a log line
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if broker.process.poll() is not None:
            raise KafkaBrokerError(f"the broker exited with {broker.process.returncode}")
        try:
            if admin.list_topics(timeout=1).brokers:
                return
        except Exception:  # KafkaException while the listener is not up yet: retry until the deadline
            time.sleep(0.2)
    raise TimeoutError(f"no answer from {broker.bootstrap_servers}")
