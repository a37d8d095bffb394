"""Choosing the cluster: settings → FlinkOptions → the configuration keys, a bad address refused, REST errors typed.

No JVM here: the keys are plain text (:func:`flink_configuration`); the e2e proof that they submit to a real cluster
is ``tests/jobs/test_cluster_mode.py``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from pipelines.config import Settings
from pipelines.errors import Terminal, Transient
from pipelines.flink.cluster import ClusterRest, ClusterUnreachableError, UnknownJobError
from pipelines.flink.environment import flink_configuration, flink_options
from pipelines.testing.kafka_broker import free_port

COMMAND = str(Path(sys.executable).with_name("feature-platform"))


def test_local_is_the_default_and_keeps_failing_fast(tmp_path: Path) -> None:
    options = flink_options(Settings(data_dir=tmp_path), tmp_path / "ckpt")
    config = flink_configuration(options)
    assert options.cluster is None
    assert "execution.target" not in config and "rest.address" not in config
    assert config["restart-strategy.type"] == "none"


def test_remote_settings_send_the_job_to_the_cluster_with_bounded_restarts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FP_FLINK_TARGET", "remote")
    monkeypatch.setenv("FP_FLINK_REST_ADDRESS", "http://jobmanager.example:8082")
    monkeypatch.setenv("FP_FLINK_RESTART_ATTEMPTS", "4")
    options = flink_options(Settings(data_dir=tmp_path), tmp_path / "ckpt", runtime_mode="batch")
    config = flink_configuration(options)
    assert options.runtime_mode == "batch" and options.parallelism == 2
    assert config["execution.target"] == "remote"
    assert (config["rest.address"], config["rest.port"]) == ("jobmanager.example", "8082")
    assert config["restart-strategy.type"] == "exponential-delay"
    assert config["restart-strategy.exponential-delay.attempts-before-reset-backoff"] == "4"
    assert config["restart-strategy.exponential-delay.initial-backoff"] == "1000ms"
    assert config["restart-strategy.exponential-delay.max-backoff"] == "60000ms"
    assert config["execution.checkpointing.dir"] == (tmp_path / "ckpt").resolve().as_uri()


def test_the_cluster_option_overrides_a_local_target(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path).on_cluster("http://127.0.0.1:8081")
    assert settings.flink_cluster == "http://127.0.0.1:8081"
    assert Settings(data_dir=tmp_path).on_cluster(None).flink_cluster is None
    assert Settings(data_dir=tmp_path, flink_rest_address="http://a:1").flink_cluster is None  # target stays local


@pytest.mark.parametrize("address", ["127.0.0.1:8081", "ftp://host:21", "http://host:80/some/path", "http://"])
def test_a_malformed_rest_address_is_refused_naming_the_setting(address: str) -> None:
    with pytest.raises(ValidationError, match="flink_rest_address"):
        Settings(flink_target="remote", flink_rest_address=address)


def test_remote_without_an_address_is_refused() -> None:
    with pytest.raises(ValidationError, match="FP_FLINK_REST_ADDRESS"):
        Settings(flink_target="remote")


@pytest.mark.parametrize("command", [["run"], ["backfill", "--from", "2026-01-01", "--to", "2026-01-02"]])
def test_the_cli_rejects_a_bad_cluster_url_before_any_work(command: list[str], tmp_path: Path) -> None:
    result = subprocess.run([COMMAND, *command, "--cluster", "not a url"], capture_output=True, text=True,
                            check=False, timeout=60, env={"FP_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 2, result.stderr
    assert "--cluster 'not a url' is not a JobManager REST URL" in result.stderr
    assert not (tmp_path / "events").exists()


def test_a_silent_cluster_is_a_transient_error_naming_its_address() -> None:
    port = free_port()  # nothing listens there
    with pytest.raises(ClusterUnreachableError, match=f"127.0.0.1:{port}") as raised:
        ClusterRest(f"http://127.0.0.1:{port}", timeout=1).job_state("0" * 32)
    assert isinstance(raised.value, Transient) and not isinstance(raised.value, Terminal)
    assert issubclass(UnknownJobError, Terminal)
