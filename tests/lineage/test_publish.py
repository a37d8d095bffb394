"""Publishing lineage with the real SDK client (``OpenMetadata`` with a real ``OpenMetadataConnection``) against a
recording stand-in for the OpenMetadata server on 127.0.0.1 (``om_stand_in.py``: NOT OpenMetadata, which cannot run
on this machine; it answers only the endpoints the client calls and validates every request body with the SDK's own
generated models, like the server would). What is checked: the requests the client really sends, the second publish,
and that a silent, failing or refusing server ends in a clear error within the deadline, never a hang."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import om_settings
from om_stand_in import StandInOpenMetadata

from pipelines.config import PROJECT_ROOT
from pipelines.contracts.model import Contract
from pipelines.errors import ServiceUnavailableError
from pipelines.lineage import names
from pipelines.lineage.client import LineageRejectedError, LineageServerError
from pipelines.lineage.hook import publish_if_configured
from pipelines.lineage.plan import LineageScope
from pipelines.lineage.publish import publish
from tests.demo_run import DemoRun

pytestmark = pytest.mark.e2e  # starts a server, runs the SDK (seconds to import)

COMMAND = str(Path(sys.executable).with_name("feature-platform"))


def _bodies(server: StandInOpenMetadata, path: str) -> list[dict]:
    return [r.body for r in server.puts() if r.path == f"/api/v1/{path}"]


def test_publish_sends_every_contracts_entities_edges_and_data_contract(
        stand_in: StandInOpenMetadata, tmp_path: Path, contracts: list[Contract],
        scope: Callable[..., LineageScope]) -> None:
    settings = om_settings(tmp_path, stand_in.url)
    summary = publish(scope(settings_=settings), settings)

    assert stand_in.requests[0].path == "/api/v1/system/version", "the client checks the server version first"
    assert all(r.authorization == "Bearer stand-in-token" for r in stand_in.requests)
    for contract in contracts:
        table = contract.table_name
        pipeline = stand_in.entity("pipelines", names.pipeline_fqn(table))
        assert [task["name"] for task in pipeline["tasks"]] == ["read_and_classify", "window_features",
                                                               "dead_letters"]
        delta = stand_in.entity("tables", names.delta_table_fqn(table))
        assert [c["name"] for c in delta["columns"]][-1] == "ingested_at"
        view = stand_in.entity("tables", names.feature_view_fqn("feature_platform", table))
        assert view["tableType"] == "View"
        for entity in (pipeline, delta, view):
            assert [t["tagFQN"] for t in entity["tags"]] == [f"FeatureContract.{contract.name}"]
            assert entity["displayName"] == f"{contract.name} {contract.version}"
        topic = stand_in.entity("topics", names.topic_fqn(contract.source.name))
        source_edge = stand_in.edges[(topic["id"], delta["id"])]["edge"]["lineageDetails"]
        assert source_edge["pipeline"]["id"] == pipeline["id"]
        assert {c["toColumn"].rsplit(".", 1)[1] for c in source_edge["columnsLineage"]} >= {
            f.name for f in contract.features}
        view_edge = stand_in.edges[(delta["id"], view["id"])]["edge"]["lineageDetails"]
        assert len(view_edge["columnsLineage"]) == len(contract.entity.join_keys) + len(contract.features)
        data_contract = next(b for b in _bodies(stand_in, "dataContracts") if b["name"] == table)
        assert data_contract["entity"]["id"] == delta["id"]
        assert data_contract["sla"]["maxLatency"]["unit"] in ("minute", "hour", "day")

    # owners: risk-ml is a team on the server; the other contracts' owners are not (reported, not invented)
    risk = next(c for c in contracts if c.owner == "risk-ml@example.com")
    team = stand_in.teams["risk-ml"]
    assert stand_in.entity("tables", names.delta_table_fqn(risk.table_name))["owners"][0]["id"] == team["id"]
    assert summary.owners[risk.table_name] == "risk-ml"
    unowned = [c.table_name for c in contracts if c.owner != risk.owner]
    assert all(summary.owners[t] is None for t in unowned)
    assert len(summary.warnings) == len(unowned)
    assert all("owners" not in stand_in.entity("tables", names.delta_table_fqn(t)) or
               not stand_in.entity("tables", names.delta_table_fqn(t))["owners"] for t in unowned)

    result = summary.to_dict()
    assert result["edges"] == 2 * len(contracts)
    assert result["column_lineage"] == sum(len(c.entity.join_keys) * 2 + 2 + len(c.features) * 2 for c in contracts)


def test_a_second_publish_sends_identical_bodies_and_changes_no_version(
        stand_in: StandInOpenMetadata, tmp_path: Path, scope: Callable[..., LineageScope]) -> None:
    """Idempotent PUTs with identical bodies: the server keeps every version; nothing new is created."""
    settings = om_settings(tmp_path, stand_in.url)
    first = publish(scope(settings_=settings), settings)
    first_puts = sorted((r.path, json.dumps(r.body, sort_keys=True)) for r in stand_in.puts())
    entities_after_first = {c: {f: dict(item["entity"]) for f, item in items.items()}
                            for c, items in stand_in.entities.items()}
    edges_after_first = dict(stand_in.edges)
    stand_in.requests.clear()

    second = publish(scope(settings_=settings), settings)

    second_puts = sorted((r.path, json.dumps(r.body, sort_keys=True)) for r in stand_in.puts())
    assert second_puts == first_puts
    assert {c: {f: item["entity"] for f, item in items.items()} for c, items in stand_in.entities.items()} \
        == entities_after_first
    assert stand_in.edges == edges_after_first
    assert [(e.fqn, e.id, e.version) for e in second.entities] == [(e.fqn, e.id, e.version) for e in first.entities]
    assert all(e.version in (None, 0.1) for e in second.entities)


def test_a_changed_contract_updates_its_entities_and_nothing_else(
        stand_in: StandInOpenMetadata, tmp_path: Path, contracts: list[Contract],
        scope: Callable[..., LineageScope]) -> None:
    from pipelines.lineage.plan import scope_for

    settings = om_settings(tmp_path, stand_in.url)
    publish(scope(settings_=settings), settings)
    changed = [c.model_copy(update={"description": "Now described differently."}) if c.name == "user_txn_stats"
               else c for c in contracts]
    publish(scope_for(settings, changed), settings)
    versions = {(collection, fqn): item["entity"]["version"]
                for collection, items in stand_in.entities.items() for fqn, item in items.items()}
    bumped = {key for key, version in versions.items() if version > 0.1}
    assert ("tables", names.delta_table_fqn("user_txn_stats_v1")) in bumped
    assert ("pipelines", names.pipeline_fqn("user_txn_stats_v1")) in bumped
    assert not {key for key in bumped if "merchant_risk_profile" in key[1] or "session_clickstream" in key[1]}


def test_a_silent_server_ends_in_a_clear_error_within_the_deadline(
        tmp_path: Path, scope: Callable[..., LineageScope]) -> None:
    with StandInOpenMetadata(silent=True) as silent:
        settings = om_settings(tmp_path, silent.url, timeout_s=1, deadline_s=6, retries=5)
        from pipelines.lineage.client import import_sdk_client

        import_sdk_client()  # paid before the deadline starts, as publish does
        started = time.monotonic()
        with pytest.raises(ServiceUnavailableError) as error:
            publish(scope(settings_=settings), settings)
        elapsed = time.monotonic() - started
    assert elapsed < 6 + 4, f"took {elapsed:.1f}s: a stuck call must end with its socket timeout"
    assert silent.url in error.value.one_line()
    assert "FP_OPENMETADATA" in error.value.one_line()
    assert len(silent.requests) >= 2, "the version check was tried again (transient) before the deadline"


def test_an_error_answer_to_add_lineage_is_raised_not_swallowed(
        stand_in: StandInOpenMetadata, tmp_path: Path, scope: Callable[..., LineageScope]) -> None:
    """The SDK's add_lineage returns {"error": ...} instead of raising; the publish must fail on it."""
    stand_in.fail("/api/v1/lineage", 500)
    settings = om_settings(tmp_path, stand_in.url, retries=1)
    with pytest.raises(LineageServerError, match=r"HTTP 500.*PUT lineage") as error:
        publish(scope(only="user_txn_stats", settings_=settings), settings)
    assert "injected failure 500" in str(error.value)
    edge_puts = [r for r in stand_in.puts() if r.path == "/api/v1/lineage"]
    assert 2 <= len(edge_puts) <= 4, "each edge tried twice (retries=1) at most"
    assert not stand_in.edges


def test_a_refused_request_is_not_retried_and_names_the_entity(
        stand_in: StandInOpenMetadata, tmp_path: Path, scope: Callable[..., LineageScope]) -> None:
    stand_in.fail("/api/v1/pipelines", 400, times=1)
    settings = om_settings(tmp_path, stand_in.url, retries=3)
    with pytest.raises(LineageRejectedError, match=r"HTTP 400.*PUT pipeline feature_platform_flink.user_txn_stats_v1"):
        publish(scope(only="user_txn_stats", settings_=settings), settings)
    assert len(_bodies(stand_in, "pipelines")) == 1
    assert not _bodies(stand_in, "tables"), "nothing after the failed level is sent"


def test_a_transient_failure_is_retried_and_the_publish_completes(
        stand_in: StandInOpenMetadata, tmp_path: Path, scope: Callable[..., LineageScope]) -> None:
    stand_in.fail("/api/v1/tables", 503, times=1)
    settings = om_settings(tmp_path, stand_in.url, retries=2)
    summary = publish(scope(only="user_txn_stats", settings_=settings), settings)
    assert len(_bodies(stand_in, "tables")) == 3, "two tables, one of them sent twice"
    assert len(stand_in.edges) == 2
    assert summary.to_dict()["edges"] == 2


def test_a_wrong_token_is_refused_at_once_with_a_hint(
        stand_in: StandInOpenMetadata, tmp_path: Path, scope: Callable[..., LineageScope]) -> None:
    settings = om_settings(tmp_path, stand_in.url, token="not-the-token", retries=3)
    with pytest.raises(LineageRejectedError, match="HTTP 401") as error:
        publish(scope(settings_=settings), settings)
    assert "token" in (error.value.hint or "")
    assert len(stand_in.requests) == 1, "a refusal is terminal: no retry"


def test_the_run_hook_reports_a_failure_and_never_raises(tmp_path: Path, contracts: list[Contract]) -> None:
    with StandInOpenMetadata(silent=True) as silent:
        settings = om_settings(tmp_path, silent.url, timeout_s=1, deadline_s=4, retries=1)
        lines: list[str] = []
        outcome = publish_if_configured(settings, contracts, progress=lines.append)
    assert outcome is not None and outcome.published is None
    assert "OpenMetadata" in outcome.error
    assert lines == [outcome.line()] and lines[0].startswith("lineage: not published:")


def test_the_run_hook_publishes_the_sources_the_job_read(
        stand_in: StandInOpenMetadata, tmp_path: Path, contracts: list[Contract]) -> None:
    settings = om_settings(tmp_path, stand_in.url)
    folders = {c.source.name: tmp_path / "events" / c.source.name for c in contracts}
    outcome = publish_if_configured(settings, contracts, sources=folders)
    assert outcome is not None and outcome.error is None
    containers = stand_in.entities["containers"]
    assert set(containers) == {names.container_fqn(source) for source in folders}
    assert containers[names.container_fqn("clicks")]["entity"]["fullPath"] == folders["clicks"].resolve().as_uri()


def test_the_cli_publishes_and_prints_json(stand_in: StandInOpenMetadata, tmp_path: Path) -> None:
    env = {**os.environ, "FP_DATA_DIR": str(tmp_path / "data"), "FP_OPENMETADATA__URL": stand_in.url,
           "FP_OPENMETADATA__TOKEN": "stand-in-token", "FP_OPENMETADATA__TIMEOUT_S": "5"}
    result = subprocess.run([COMMAND, "lineage", "--contract", "user_txn_stats", "--json"], capture_output=True,
                            text=True, env=env, check=False, timeout=600, cwd=PROJECT_ROOT)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["edges"] == 2 and summary["owners"] == {"user_txn_stats_v1": "risk-ml"}
    assert names.delta_table_fqn("user_txn_stats_v1") in stand_in.entities["tables"]


def test_the_cli_dry_run_needs_no_server_and_a_publish_without_one_is_a_usage_error(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("FP_OPENMETADATA")}
    env["FP_DATA_DIR"] = str(tmp_path / "data")
    dry = subprocess.run([COMMAND, "lineage", "--dry-run", "--json", "--events", "files"], capture_output=True,
                         text=True, env=env, check=False, timeout=600, cwd=PROJECT_ROOT)
    assert dry.returncode == 0, dry.stderr
    plan = json.loads(dry.stdout)
    assert {r["entity_type"] for r in plan["requests"]} >= {"container", "pipeline", "table", "lineage",
                                                            "dataContract"}
    refused = subprocess.run([COMMAND, "lineage"], capture_output=True, text=True, env=env, check=False,
                             timeout=600, cwd=PROJECT_ROOT)
    assert refused.returncode == 2
    assert "no OpenMetadata server configured" in refused.stderr


def test_run_publishes_lineage_of_the_folders_it_read(demo_run: DemoRun, contracts: list[Contract]) -> None:
    """`feature-platform run` (a real Flink job; the suite's shared run, ``tests/demo_run.py``) publishes lineage after
    its work when a server is configured."""
    stand_in = demo_run.openmetadata
    lineage = demo_run.summary["lineage"]
    assert lineage["error"] is None
    assert lineage["published"]["edges"] == 2 * len(contracts)
    events = demo_run.data_dir / "events"
    assert {fqn: item["entity"]["fullPath"] for fqn, item in stand_in.entities["containers"].items()} == {
        names.container_fqn(source): (events / source).resolve().as_uri() for source in {c.source.name
                                                                                        for c in contracts}}
