"""The parse-once switch: ``auto`` falls back to the plain SQL when the functions' jar cannot be built, ``on`` fails,
``off`` never rewrites; a job that uses the functions always carries their jar."""

from __future__ import annotations

from pathlib import Path

import pytest

import pipelines.flink.parse_once as switch
from pipelines.codegen.flink_sql import OutputPaths, build_job_sql
from pipelines.codegen.parse_once import uses_parse_once
from pipelines.config import PROJECT_ROOT
from pipelines.contracts.load import load_contract
from pipelines.flink.environment import FlinkOptions
from pipelines.jvm.java_build import JavaBuildError


def _job():
    contract = load_contract(PROJECT_ROOT / "contracts" / "user_txn_stats.yaml").contract
    return build_job_sql([contract], {"transactions": "file:///events"},
                         {contract.table_name: OutputPaths("file:///f", "file:///d")})


def _no_jar() -> Path:
    raise JavaBuildError("no compiler here")


def test_auto_uses_the_functions_and_their_jar(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    jar = tmp_path / "parse-once.jar"
    monkeypatch.setattr(switch, "parse_once_jar", lambda: jar)
    job, options = switch.prepare_parse_once(_job(), FlinkOptions(checkpoint_dir=tmp_path, jars=(tmp_path / "k",)))
    assert uses_parse_once(job)
    assert options.jars == (tmp_path / "k", jar)


def test_auto_falls_back_to_the_plain_sql_when_the_jar_cannot_be_built(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(switch, "parse_once_jar", _no_jar)
    original = _job()
    job, options = switch.prepare_parse_once(original, FlinkOptions(checkpoint_dir=tmp_path))
    assert job is original and options.jars == ()


def test_on_refuses_to_run_without_the_jar(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(switch, "parse_once_jar", _no_jar)
    with pytest.raises(JavaBuildError, match="no compiler"):
        switch.prepare_parse_once(_job(), FlinkOptions(checkpoint_dir=tmp_path, parse_once="on"))


def test_off_runs_the_plain_sql(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(switch, "parse_once_jar", _no_jar)
    original = _job()
    assert switch.prepare_parse_once(original, FlinkOptions(checkpoint_dir=tmp_path, parse_once="off"))[0] is original
