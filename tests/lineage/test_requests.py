"""Lineage requests built from the contracts: every body is an OpenMetadata generated model, with column lineage,
tags, version, owner and SLA taken from the contract. No server: these are the requests a publish would send."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta

import pytest

from pipelines.codegen.flink_sql import OutputPaths, build_job_sql
from pipelines.config import Settings
from pipelines.contracts.model import Contract
from pipelines.errors import Terminal, Transient
from pipelines.lineage import names
from pipelines.lineage.client import LineageRejectedError, LineageServerError, check_lineage_answer
from pipelines.lineage.data_contract import max_latency, refresh_frequency
from pipelines.lineage.export import PATHS, plan_to_dict, request_body
from pipelines.lineage.plan import LineagePlan, LineageScope, PlannedRequest
from pipelines.lineage.publish import owner_candidates, with_ids
from pipelines.lineage.sdk import UNRESOLVED_ID


def _edge(plan: LineagePlan, table: str, to_view: bool) -> PlannedRequest:
    edges = [r for r in plan.of_type("lineage") if r.contract == table]
    return next(e for e in edges if e.fqn.endswith(f"feature_views.{table}") == to_view)


def _contract(contracts: list[Contract], name: str) -> Contract:
    return next(c for c in contracts if c.name == name)


@pytest.mark.parametrize("events", ["kafka", "files"])
def test_every_request_is_an_openmetadata_model_that_survives_its_own_json(
        scope: Callable[..., LineageScope], events: str) -> None:
    plan = scope(events).plan()
    assert plan.requests
    for planned in plan.requests:
        model = type(planned.request)
        assert model.__module__.startswith("metadata.generated.schema.api."), model
        assert model.model_config.get("extra") == "forbid", f"{model.__name__} must reject unknown fields"
        again = model.model_validate_json(planned.request.model_dump_json(by_alias=True))
        assert again == planned.request, planned.fqn
        if planned.entity_type not in ("lineage", "dataContract"):  # those refer to entities by id (filled later)
            # the exported body means what the SDK sends (model_dump_json), both read back by the model
            exported = model.model_validate(request_body(planned.request))
            assert exported == model.model_validate_json(planned.request.model_dump_json(by_alias=True)), planned.fqn


def test_a_misspelt_field_is_refused_by_the_openmetadata_model(scope: Callable[..., LineageScope]) -> None:
    table = scope().plan().of_type("table")[0].request
    body = {**request_body(table), "colums": []}
    with pytest.raises(ValueError, match="colums"):
        type(table).model_validate(body)


def test_each_contract_gets_its_pipeline_tables_tag_edges_and_data_contract(
        scope: Callable[..., LineageScope], contracts: list[Contract]) -> None:
    plan = scope().plan()
    project = "feature_platform"
    for contract in contracts:
        table = contract.table_name
        owned = {(r.entity_type, r.fqn) for r in plan.requests if r.contract == table}
        assert owned == {
            ("tag", names.tag_fqn(contract.name)),
            ("pipeline", names.pipeline_fqn(table)),
            ("table", names.delta_table_fqn(table)),
            ("table", names.feature_view_fqn(project, table)),
            ("lineage", f"{names.topic_fqn(contract.source.name)} -> {names.delta_table_fqn(table)}"),
            ("lineage", f"{names.delta_table_fqn(table)} -> {names.feature_view_fqn(project, table)}"),
            ("dataContract", f"{names.delta_table_fqn(table)}.{table}"),
        }
    topics = {r.fqn for r in plan.of_type("topic")}
    assert topics == {names.topic_fqn(c.source.name) for c in contracts}, "one topic per source, shared"


def test_requests_come_after_everything_they_refer_to(scope: Callable[..., LineageScope]) -> None:
    plan = scope().plan()
    level_of = {(r.entity_type, r.fqn): r.level for r in plan.requests}
    for planned in plan.requests:
        body = planned.request.model_dump(mode="json", by_alias=True, exclude_none=True)
        refs = [("tag", label["tagFQN"]) for label in body.get("tags") or []]
        for field, kind in (("service", None), ("database", "database"), ("databaseSchema", "databaseSchema"),
                            ("classification", "classification")):
            if isinstance(body.get(field), str):
                refs += [(k, body[field]) for k in ([kind] if kind else
                         ["messagingService", "storageService", "pipelineService", "databaseService"])
                         if (k, body[field]) in level_of]
        if planned.entity_type == "lineage":
            edge = body["edge"]
            refs += [(edge[end]["type"], edge[end]["fullyQualifiedName"]) for end in ("fromEntity", "toEntity")]
        for ref in refs:
            assert level_of[ref] < planned.level, f"{planned.fqn} refers to {ref} of the same or a later level"


def test_every_feature_comes_from_its_input_column_with_aggregation_and_window(
        scope: Callable[..., LineageScope], contracts: list[Contract]) -> None:
    plan = scope().plan()
    for contract in contracts:
        table = contract.table_name
        source_fqn = names.topic_fqn(contract.source.name)
        table_fqn = names.delta_table_fqn(table)
        details = _edge(plan, table, to_view=False).request.edge.lineageDetails
        assert details.pipeline.fullyQualifiedName == names.pipeline_fqn(table)
        assert details.source.value == "PipelineLineage"
        by_target = {c.toColumn.root: c for c in details.columnsLineage}
        for feature in contract.features:
            lineage = by_target[f"{table_fqn}.{feature.name}"]
            column = feature.column or contract.source.event_time
            assert [c.root for c in lineage.fromColumns] == [f"{source_fqn}.{column}"]
            assert lineage.function.root.startswith(f"{feature.aggregation}({feature.column or '*'}) over ")
        for key in contract.entity.join_keys:
            assert [c.root for c in by_target[f"{table_fqn}.{key}"].fromColumns] == [f"{source_fqn}.{key}"]
        assert set(by_target) == {f"{table_fqn}.{name}" for name in
                                  [*contract.entity.join_keys, "window_start", "window_end",
                                   *(f.name for f in contract.features)]}


def test_the_function_text_names_the_window_of_each_feature(contracts: list[Contract],
                                                            scope: Callable[..., LineageScope]) -> None:
    plan = scope().plan()
    table_fqn = names.delta_table_fqn("user_txn_stats_v1")
    functions = {c.toColumn.root.rsplit(".", 1)[1]: c.function.root
                 for c in _edge(plan, "user_txn_stats_v1", to_view=False).request.edge.lineageDetails.columnsLineage}
    assert functions["amount_sum_1h"] == "sum(amount) over HOP(size 1h, slide 5m) on event_ts"
    assert functions["txn_count_5m"] == "count(*) over TUMBLE(5m) on event_ts"
    assert functions["distinct_merchants_1h"] == "count_distinct(merchant_id) over HOP(size 1h, slide 5m) on event_ts"
    assert functions["window_end"] == "window_end of HOP(size 1h, slide 5m) on event_ts"
    assert table_fqn.startswith(names.DELTA_SERVICE)


def test_the_feature_view_reads_every_key_and_feature_of_the_delta_table(
        scope: Callable[..., LineageScope], contracts: list[Contract]) -> None:
    plan = scope().plan()
    for contract in contracts:
        table = contract.table_name
        edge = _edge(plan, table, to_view=True).request.edge
        assert edge.fromEntity.fullyQualifiedName == names.delta_table_fqn(table)
        assert edge.toEntity.fullyQualifiedName == names.feature_view_fqn("feature_platform", table)
        pairs = {(c.fromColumns[0].root.rsplit(".", 1)[1], c.toColumn.root.rsplit(".", 1)[1])
                 for c in edge.lineageDetails.columnsLineage}
        expected = [*contract.entity.join_keys, *(f.name for f in contract.features)]
        assert pairs == {(name, name) for name in expected}


def test_contract_entities_carry_tag_version_and_owner_text(scope: Callable[..., LineageScope],
                                                            contracts: list[Contract]) -> None:
    plan = scope().plan()
    for contract in contracts:
        for planned in plan.requests:
            if planned.contract != contract.table_name or planned.entity_type not in ("pipeline", "table"):
                continue
            request = planned.request
            assert [t.tagFQN.root for t in request.tags] == [f"FeatureContract.{contract.name}"]
            assert request.displayName == f"{contract.name} {contract.version}"
            assert f"version {contract.version}" in request.description.root
            assert contract.owner in request.description.root


def test_the_data_contract_holds_sla_quality_rules_version_and_status(
        scope: Callable[..., LineageScope], contracts: list[Contract]) -> None:
    plan = scope().plan()
    contract = _contract(contracts, "user_txn_stats")
    request = next(r.request for r in plan.of_type("dataContract") if r.contract == contract.table_name)
    assert request.entity.fullyQualifiedName == names.delta_table_fqn(contract.table_name)
    assert request.sla.maxLatency.value == 2 and request.sla.maxLatency.unit.value == "minute"  # freshness: 2m
    assert request.sla.refreshFrequency is None, "a 5-minute step is not a whole number of hours"
    assert request.displayName == "user_txn_stats 1.0.0"
    assert request.entityStatus.value == "Approved"
    rules = {rule.column: rule for rule in request.odcsQualityRules}
    assert set(rules) == {f.name for f in contract.features}
    assert all(rule.metric.value == "nullValues" and rule.unit == "percent" for rule in rules.values())
    for feature in contract.features:
        override = contract.sla.features.get(feature.name)
        expected = override.null_rate_max if override and override.null_rate_max is not None \
            else contract.sla.null_rate_max
        assert rules[feature.name].mustBeLessOrEqualTo == pytest.approx(expected * 100)
    assert [c.name.root for c in request.schema_] == [c.name.root for c in
                                                      next(r.request for r in plan.of_type("table")
                                                           if r.fqn == names.delta_table_fqn(contract.table_name))
                                                      .columns]
    merchant = next(r.request for r in plan.of_type("dataContract") if r.contract == "merchant_risk_profile_v2")
    assert (merchant.sla.refreshFrequency.interval, merchant.sla.refreshFrequency.unit.value) == (1, "hour")


@pytest.mark.parametrize(("freshness", "expected"), [
    (timedelta(minutes=2), (2, "minute")), (timedelta(seconds=30), (1, "minute")),
    (timedelta(seconds=90), (2, "minute")), (timedelta(hours=2), (2, "hour")), (timedelta(days=1), (1, "day")),
    (timedelta(minutes=90), (90, "minute")),
])
def test_freshness_becomes_max_latency_rounded_up_never_down(freshness: timedelta,
                                                            expected: tuple[int, str]) -> None:
    assert max_latency(freshness) == expected


def test_refresh_frequency_only_in_whole_hours_or_days() -> None:
    assert refresh_frequency(timedelta(minutes=5)) is None
    assert refresh_frequency(timedelta(hours=1)) == (1, "hour")
    assert refresh_frequency(timedelta(days=2)) == (2, "day")


def test_a_shared_source_keeps_the_columns_of_every_reader_when_one_contract_is_published(
        scope: Callable[..., LineageScope], contracts: list[Contract]) -> None:
    alone = scope(only="merchant_risk_profile").plan()
    everyone = scope().plan()
    topic = next(r.request for r in alone.of_type("topic"))
    assert topic == next(r.request for r in everyone.of_type("topic") if r.fqn == names.topic_fqn("transactions"))
    readers = [c for c in contracts if c.source.name == "transactions"]
    assert {f.name.root for f in topic.messageSchema.schemaFields} == {
        name for c in readers for name in c.source.columns}
    assert alone.contracts == ["merchant_risk_profile_v2"]


def test_a_files_source_is_a_container_with_the_columns_and_its_folder(
        scope: Callable[..., LineageScope], settings: Settings) -> None:
    plan = scope("files").plan()
    assert not plan.of_type("topic") and not plan.of_type("messagingService")
    container = next(r.request for r in plan.of_type("container") if r.fqn == names.container_fqn("clicks"))
    assert container.fullPath == (settings.events_dir / "clicks").resolve().as_uri()
    assert "session_id" in {c.name.root for c in container.dataModel.columns}
    edge = _edge(plan, "session_clickstream_v0", to_view=False).request.edge
    assert edge.fromEntity.type == "container"
    assert all(c.root.startswith(names.container_fqn("clicks") + ".")
               for lineage in edge.lineageDetails.columnsLineage for c in lineage.fromColumns)


def test_a_topic_name_with_dots_is_quoted_in_every_fqn(contracts: list[Contract], tmp_path) -> None:
    from pipelines.lineage.plan import scope_for

    settings = Settings(data_dir=tmp_path, kafka_topics={"transactions": "payments.card.v1"})
    plan = scope_for(settings, contracts).plan()
    topic = next(r for r in plan.of_type("topic") if r.request.name.root == "payments.card.v1")
    assert topic.fqn == 'feature_platform_kafka."payments.card.v1"'
    edge = _edge(plan, "user_txn_stats_v1", to_view=False).request.edge
    assert edge.fromEntity.fullyQualifiedName == topic.fqn
    assert edge.lineageDetails.columnsLineage[0].fromColumns[0].root.startswith(topic.fqn + ".")


def test_the_pipeline_tasks_hold_the_sql_the_job_runs(scope: Callable[..., LineageScope],
                                                      contracts: list[Contract], settings: Settings) -> None:
    made = scope()
    plan = made.plan()
    contract = _contract(contracts, "user_txn_stats")
    pipeline = next(r.request for r in plan.of_type("pipeline") if r.contract == contract.table_name)
    tasks = {task.name: task for task in pipeline.tasks}
    assert list(tasks) == ["read_and_classify", "window_features", "dead_letters"]
    assert tasks["read_and_classify"].downstreamTasks == ["window_features", "dead_letters"]
    base = settings.flink_dir / "runs" / "RUN_ID" / contract.table_name  # one placeholder: stable across runs
    location = made.sources["transactions"]
    job = build_job_sql([contract], {"transactions": location}, {contract.table_name: OutputPaths(
        features=(base / "features").as_uri(), dead_letters=(base / "dead_letters").as_uri())})
    published = "".join(task.taskSQL.root for task in pipeline.tasks)
    for statement in (*job.ddl, *job.inserts):
        assert published.count(statement + ";") == 1, statement[:60]
    assert job.inserts[0] in tasks["window_features"].taskSQL.root
    assert job.inserts[1] in tasks["dead_letters"].taskSQL.root
    assert "'connector' = 'kafka'" in tasks["read_and_classify"].taskSQL.root
    edge = _edge(plan, contract.table_name, to_view=False).request.edge
    assert edge.lineageDetails.sqlQuery.root == job.inserts[0]


def test_the_dry_run_export_names_paths_the_sdk_uses_and_holds_no_placeholder_ids(
        scope: Callable[..., LineageScope]) -> None:
    from metadata.ingestion.ometa.routes import ROUTES

    plan = scope().plan()
    exported = plan_to_dict(plan)
    text = json.dumps(exported)
    assert str(UNRESOLVED_ID) not in text
    for planned, item in zip(plan.requests, exported["requests"], strict=True):
        assert item["path"] == "/v1" + ROUTES[type(planned.request).__name__]
        assert item["path"] == PATHS[planned.entity_type]
    assert exported["owners"]["user_txn_stats_v1"] == "risk-ml@example.com"


def test_placeholder_ids_are_filled_in_and_a_missing_one_is_refused(scope: Callable[..., LineageScope]) -> None:
    plan = scope(only="user_txn_stats").plan()
    edge = next(r for r in plan.of_type("lineage") if r.fqn.endswith("feature_views.user_txn_stats_v1"))
    ids = {("table", names.delta_table_fqn("user_txn_stats_v1")): "11111111-1111-1111-1111-111111111111",
           ("table", names.feature_view_fqn("feature_platform", "user_txn_stats_v1")):
               "22222222-2222-2222-2222-222222222222"}
    filled = with_ids(edge.request, ids).edge
    assert str(filled.fromEntity.id.root) == "11111111-1111-1111-1111-111111111111"
    assert str(filled.toEntity.id.root) == "22222222-2222-2222-2222-222222222222"
    with pytest.raises(KeyError, match="feature_views"):
        with_ids(edge.request, dict(list(ids.items())[:1]))


def test_add_lineage_error_dict_is_raised_by_status() -> None:
    with pytest.raises(LineageServerError, match="HTTP 500") as server_error:
        check_lineage_answer({"error": "Error 500 trying to PUT lineage for {...}: boom"}, "PUT lineage x", "u")
    assert isinstance(server_error.value, Transient)
    with pytest.raises(LineageRejectedError, match="HTTP 400") as refused:
        check_lineage_answer({"error": "Error 400 trying to PUT lineage: Invalid column name"}, "PUT lineage x", "u")
    assert isinstance(refused.value, Terminal)
    assert check_lineage_answer({"entity": {}}, "PUT lineage x", "u") == {"entity": {}}


def test_owner_candidates() -> None:
    assert owner_candidates("risk-ml@example.com") == ["risk-ml@example.com", "risk-ml"]
    assert owner_candidates("growth-ml") == ["growth-ml"]


def test_without_a_server_the_hook_does_nothing(settings: Settings, contracts: list[Contract]) -> None:
    from pipelines.lineage.hook import publish_if_configured

    assert settings.openmetadata.url is None
    assert publish_if_configured(settings, contracts) is None
