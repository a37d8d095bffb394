"""One error hierarchy: every error the platform raises on purpose is a PlatformError that says where and what next,
its retry decision is in its type, and each console command turns it into one line and an exit code."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.config import PROJECT_ROOT
from pipelines.errors import PlatformError, Terminal, Transient, UsageError
from pipelines.runtime import RetryPolicy, StageError, TransientError

PACKAGE = PROJECT_ROOT / "pipelines"


def _exception_classes() -> list[type[BaseException]]:
    """Every public exception class defined under pipelines/ (each module imported and inspected, not guessed by name).
    ``pipelines.testing`` is included: its servers' errors reach the tests' output too."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        name = ".".join(path.relative_to(PROJECT_ROOT).with_suffix("").parts).removesuffix(".__init__")
        module = importlib.import_module(name)
        found += [value for key, value in vars(module).items()
                  if isinstance(value, type) and issubclass(value, BaseException) and value.__module__ == name
                  and not key.startswith("_")]
    return found


def test_every_domain_error_is_a_platform_error_with_a_retry_decision() -> None:
    classes = _exception_classes()
    assert len(classes) >= 20  # the walk found them (a broken walk must not pass vacuously)
    for error in classes:
        where = f"{error.__module__}.{error.__qualname__}"
        if error is not PlatformError:  # the base leaves the decision to its subclasses
            assert issubclass(error, Transient) != issubclass(error, Terminal), f"{where}: Transient xor Terminal"
        if not error.__module__.startswith("pipelines.runtime."):  # the runtime is generic: no PlatformErrors there
            assert issubclass(error, PlatformError), f"{where} is not a PlatformError"


def test_a_platform_error_names_where_and_what_next() -> None:
    error = PlatformError("table has no rows", table="user_txn_stats_v1", file="contracts/u.yaml", line=12,
                          run_id="r1", hint="run `feature-platform run`")
    assert error.one_line() == ("contracts/u.yaml:12 table=user_txn_stats_v1 run_id=r1: table has no rows "
                                "(next: run `feature-platform run`)")
    assert str(error) == error.one_line()
    assert UsageError("bad").exit_code == 2 and PlatformError("x").exit_code == 1


def test_only_transient_errors_are_retried() -> None:
    from pipelines.feast_sync.online import OnlineLoadError
    from pipelines.sources.kafka import KafkaSourceError

    policy = RetryPolicy(max_attempts=3)
    assert policy.should_retry(KafkaSourceError("broker did not answer"), 1)
    assert policy.should_retry(TransientError("busy"), 1)
    assert not policy.should_retry(OnlineLoadError("gave up"), 1)
    assert not policy.should_retry(TimeoutError("socket"), 1)
    assert not policy.should_retry(StageError("s", 0, None, []), 1)


def _platform(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(Path(sys.executable).parent / "feature-platform"), *args], capture_output=True,
                          text=True, timeout=120, check=False, env={**os.environ, **env})


@pytest.mark.parametrize("debug", [False, True])
def test_a_command_prints_one_line_and_a_traceback_only_with_debug(tmp_path: Path, debug: bool) -> None:
    env = {"FP_CONTRACTS_DIR": str(tmp_path / "missing"), "FP_DATA_DIR": str(tmp_path / "data")}
    result = _platform(*(["--debug"] if debug else []), "status", env=env)
    assert result.returncode == 2, result.stderr
    assert "status: usage: no contracts folder" in result.stderr
    assert "(next: set FP_CONTRACTS_DIR" in result.stderr
    assert ("Traceback" in result.stderr) == debug


def test_a_bad_option_value_is_a_usage_error_naming_the_option(tmp_path: Path) -> None:
    result = _platform("backfill", "--from", "yesterday", "--to", "2026-01-02", env={"FP_DATA_DIR": str(tmp_path)})
    assert result.returncode == 2
    assert "--from 'yesterday' is not an ISO 8601 time" in result.stderr and "Traceback" not in result.stderr
