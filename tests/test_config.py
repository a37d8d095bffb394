"""Settings: defaults that work on a laptop, FP_ overrides, and paths that never depend on the working directory."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from pipelines.config import PROJECT_ROOT, Settings


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
