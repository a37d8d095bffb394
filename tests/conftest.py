"""Fixtures shared by every test folder: Settings on a temporary data folder and the project's own contracts.

Folder-specific fixtures and helpers stay in the folder's ``conftest.py`` (tests import those with
``from conftest import ...``). This file is not importable that way from a folder with a conftest of its own (every
``conftest.py`` outside a package is the module ``conftest``): use its fixtures.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pipelines.config import PROJECT_ROOT, Settings
from pipelines.contracts.load import LoadedContract, load_contract
from pipelines.contracts.model import Contract
from pipelines.jvm.jars import FLINK_KAFKA, KAFKA_BROKER, JarFetchError, fetch_jars
from pipelines.testing.kafka_broker import KafkaBroker, start_kafka_broker
from pipelines.testing.redis_server import REDIS_SERVER, RedisServer
from tests.demo_run import DemoRun, run_demo
from tests.lineage.om_stand_in import StandInOpenMetadata

#: The project's example contracts (``contracts/*.yaml``).
CONTRACTS = PROJECT_ROOT / "contracts"

#: The JIT setting of every Flink JVM the tests start (PyFlink's gateway with its mini-cluster, in pytest's process and
#: in every subprocess: `feature-platform run`/`stream`, the crash drivers), passed through ``JVM_ARGS``, which PyFlink
#: reads when it launches its JVM. A test job lives for seconds, most of them planning and deploying (Calcite, code
#: generation: cold code), and C2's compiler threads compete with that work for the machine's two cores. C1 alone
#: made a `user_txn_stats` run of 6,000 events 1.7-2x faster end to end at load 5-7 (74 s and 68 s -> 36 s and 41 s),
#: and the Flink-heavy test files 1.6-1.7x faster (crash chain 181 -> 106 s, restore twice 199 -> 117 s), pytest's own
#: JVM included, which runs many jobs (test_flink_vs_reference with test_backfill: 357 -> 223 s).
#: The JIT tier changes how fast the JVM runs, never what it computes, so every check stays as strong; benchmarks do
#: not load this file and keep the JVM's default. A ``JVM_ARGS`` that already sets a tier is left alone.
TEST_JVM_JIT = "-XX:TieredStopAtLevel=1"


def _compile_test_jvms_with_c1_only() -> None:
    current = os.environ.get("JVM_ARGS", "")
    if "TieredStopAtLevel" not in current:
        os.environ["JVM_ARGS"] = f"{current} {TEST_JVM_JIT}".strip()


_compile_test_jvms_with_c1_only()


def load_project_contract(name: str) -> LoadedContract:
    """The project's contract ``contracts/<name>.yaml``, loaded with positions."""
    return load_contract(CONTRACTS / f"{name}.yaml")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings on a temporary data folder; contracts and the Feast repository are the project's own."""
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture(scope="session")
def project_contract() -> Callable[[str], Contract]:
    """``project_contract("user_txn_stats")`` → the project's contract of that name."""
    return lambda name: load_project_contract(name).contract


@pytest.fixture(scope="session")
def project_loaded_contract() -> Callable[[str], LoadedContract]:
    """``project_loaded_contract("user_txn_stats")`` → the project's contract with its file and positions."""
    return load_project_contract


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoRun]:
    """One `feature-platform run` shared by the tests that check its results (see ``tests/demo_run.py``)."""
    with StandInOpenMetadata() as openmetadata:
        openmetadata.add_team("risk-ml")
        yield run_demo(tmp_path_factory.mktemp("demo_run"), openmetadata)


# ------------------------------------------------------------------------------------------------ a real Kafka broker
# Kafka 4.x in KRaft mode from its Maven Central jars, on 127.0.0.1 (the source tests and the stream tests). Locally
# the Kafka tests skip with the reason when Maven or Maven Central is not available; under ``CI=true`` they fail
# instead (they must run in CI).


def _jars_or_skip() -> None:
    try:
        fetch_jars(KAFKA_BROKER)
        fetch_jars(FLINK_KAFKA)
    except JarFetchError as error:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"Kafka jars unavailable (needs `mvn` and Maven Central): {error}")


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    """One broker for the whole session (six test modules use it; a start took 7-15 s on this machine), stopped and its
    folders removed at the end. Every test makes its own topics with names no other test uses (and its own consumer
    group), so the tests share the broker, never a topic."""
    _jars_or_skip()
    broker = start_kafka_broker(tmp_path_factory.mktemp("kafka"), ready_timeout_s=90)
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A running redis-server for one test; skipped locally when Redis is not installed, never under CI=true."""
    if not Path(REDIS_SERVER).exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"redis-server not found at {REDIS_SERVER} (CI=true: the Redis tests must run)")
        pytest.skip(f"redis-server not installed ({REDIS_SERVER}); `apt-get install redis-server` to run this test")
    server = RedisServer(tmp_path / "redis")
    server.start()
    try:
        yield server
    finally:
        server.stop()
