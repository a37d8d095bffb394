"""Settings: defaults that work on a laptop, FP_ overrides, and paths that never depend on the working directory."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from pipelines.config import PROJECT_ROOT, Settings, parse_utc_time


def test_defaults_live_under_the_project_root() -> None:
    settings = Settings()
    assert settings.data_dir == PROJECT_ROOT / "data"
    assert settings.contracts_dir == PROJECT_ROOT / "contracts"
    assert settings.delta_table_path("user_txn_stats_v1") == PROJECT_ROOT / "data" / "delta" / "user_txn_stats_v1"


def test_environment_overrides_and_relative_paths(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # a relative path must not resolve against the working directory
    monkeypatch.setenv("FP_DATA_DIR", "elsewhere/data")
    monkeypatch.setenv("FP_PARALLELISM", "1")
    monkeypatch.setenv("FP_JVM_HEAP", "512m")
    settings = Settings()
    assert settings.data_dir == PROJECT_ROOT / "elsewhere" / "data"
    assert settings.parallelism == 1
    assert settings.jvm_heap == "512m"


@pytest.mark.parametrize(("name", "value"), [("FP_PARALLELISM", "0"), ("FP_JVM_HEAP", "lots")])
def test_bad_settings_are_rejected_with_their_name(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=name.removeprefix("FP_").lower()):
        Settings()


def test_stage_settings_come_from_nested_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FP_STAGES__ONLINE_LOAD__RATE", "10000")
    monkeypatch.setenv("FP_STAGES__ONLINE_LOAD__CONCURRENCY", "4")
    monkeypatch.setenv("FP_STAGES__DELTA_COMMIT__CPUS", "[0]")
    monkeypatch.setenv("FP_STAGES__DELTA_COMMIT__PIN", "false")
    settings = Settings()
    online = settings.stage("online-load")
    assert online.rate == 10000 and online.concurrency == 4 and online.retries == 5
    commit = settings.stage("delta-commit")
    assert commit.cpus == [0] and commit.pin is False
    assert settings.stage("backfill") == settings.stage("data-checks")  # unconfigured stages get the defaults
    assert settings.stage("backfill").queue_size == 8


def test_bad_stage_settings_are_rejected_with_their_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FP_STAGES__ONLINE_LOAD__RATE", "-1")
    with pytest.raises(ValidationError, match=r"online_load\.rate"):
        Settings()


def test_openmetadata_settings_come_from_nested_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().openmetadata.url is None, "no server by default: nothing is published"
    monkeypatch.setenv("FP_OPENMETADATA__URL", "http://127.0.0.1:8585/api")
    monkeypatch.setenv("FP_OPENMETADATA__TOKEN", "secret-jwt")
    monkeypatch.setenv("FP_OPENMETADATA__TIMEOUT_S", "3")
    settings = Settings()
    assert settings.openmetadata.url == "http://127.0.0.1:8585/api"
    assert settings.openmetadata.token.get_secret_value() == "secret-jwt"
    assert "secret-jwt" not in repr(settings), "the token is a secret"
    assert settings.openmetadata.timeout_s == 3
    monkeypatch.setenv("FP_OPENMETADATA__URL", "")  # what compose passes for an unset variable
    assert Settings().openmetadata.url is None


@pytest.mark.parametrize(("name", "value"), [("FP_OPENMETADATA__URL", "127.0.0.1:8585"),
                                             ("FP_OPENMETADATA__TIMEOUT_S", "0")])
def test_bad_openmetadata_settings_are_rejected_with_their_name(monkeypatch: pytest.MonkeyPatch, name: str,
                                                                value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=name.removeprefix("FP_OPENMETADATA__").lower()):
        Settings()


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-11-30T06:00:00Z", datetime(2026, 11, 30, 6, tzinfo=UTC)),
    ("2026-11-30T07:00:00+01:00", datetime(2026, 11, 30, 6, tzinfo=UTC)),
    ("2026-11-30T06:00:00", datetime(2026, 11, 30, 6, tzinfo=UTC)),
])
def test_a_time_option_is_iso_8601_in_utc(text: str, expected: datetime) -> None:
    moment = parse_utc_time(text, "--as-of")
    assert moment == expected and moment.utcoffset() == timedelta(0)


def test_a_bad_as_of_names_the_text() -> None:
    with pytest.raises(ValueError, match="'yesterday' is not an ISO 8601 time"):
        parse_utc_time("yesterday", "--as-of")
