"""The Grafana dashboard queries only metrics the platform exports, and covers what an operator must see.

Exported names are collected from the modules that define the platform's Prometheus families (one module per owner,
imported here; a missing module fails the test: the dashboard would show empty panels), by asking each
prometheus_client collector for its families and deriving the sample names a scrape shows: a counter ``x`` is scraped
as ``x_total``, a histogram ``h`` as ``h_bucket``/``h_sum``/``h_count``, a gauge as itself. So a query of
``fp_serve_requests_count`` (not a histogram) fails, and ``fp_stage_latency_seconds_bucket`` passes.

Flink's names come from its Prometheus reporter's naming rule (below), over the system metrics Flink documents;
test_flink_reporter.py (e2e) checks them against the real reporter's output.
"""

from __future__ import annotations

import importlib
import inspect
import json
import re
from collections.abc import Iterator
from types import ModuleType

import promql_parser
import pytest
from prometheus_client import REGISTRY
from prometheus_client.metrics import MetricWrapperBase

from pipelines.config import PROJECT_ROOT

DASHBOARD = PROJECT_ROOT / "monitoring" / "grafana" / "dashboards" / "feature-platform.json"
DATASOURCE = PROJECT_ROOT / "monitoring" / "grafana" / "provisioning" / "datasources" / "prometheus.yml"

#: The modules that define the platform's Prometheus families (common names: runtime stages, stream, serve, rollout).
METRIC_MODULES = (
    "pipelines.runtime.metrics",
    "pipelines.jobs.stream_metrics",
    "pipelines.serving.metrics",
    "pipelines.rollout.metrics",
)

#: Flink system metrics the dashboard reads, as (reporter scope, metric) pairs from Flink's metrics documentation.
#: The Prometheus reporter names a metric ``flink_<logical scope>_<metric>``: the logical scope is the scope format
#: without its variables (``<host>.taskmanager.<tm_id>.<job_name>.<task_name>.<subtask_index>`` ->
#: ``taskmanager_job_task``; the variables become labels such as ``task_name``, ``job_name``, ``tm_id``), nested
#: metric groups are joined with ``_`` (``Status.JVM.Memory.Heap.Used``), and any character outside
#: ``[a-zA-Z0-9_:]`` becomes ``_``.
FLINK_DOCUMENTED_METRICS = (
    ("jobmanager", "numRegisteredTaskManagers"),
    ("jobmanager", "numRunningJobs"),
    ("jobmanager", "Status.JVM.Memory.Heap.Used"),
    ("jobmanager_job", "numRestarts"),
    ("jobmanager_job", "lastCheckpointDuration"),
    ("jobmanager_job", "numberOfCompletedCheckpoints"),
    ("jobmanager_job", "numberOfFailedCheckpoints"),
    ("taskmanager", "Status.JVM.Memory.Heap.Used"),
    ("taskmanager_job_task", "numRecordsInPerSecond"),
    ("taskmanager_job_task", "numRecordsOutPerSecond"),
    ("taskmanager_job_task", "busyTimeMsPerSecond"),
    ("taskmanager_job_task", "backPressuredTimeMsPerSecond"),
    ("taskmanager_job_task_operator", "currentOutputWatermark"),
)

#: What the dashboard must show (issue: events/s and lag per source, dead letters by reason, commit latency, online
#: freshness per contract, serving requests/s, p99, statuses and fallbacks, rollout weight and gate values).
REQUIRED_SERIES = {
    "fp_stream_events_total", "fp_stream_source_lag_seconds", "fp_stream_dead_letters_total",
    "fp_stream_commit_latency_seconds_bucket", "fp_online_freshness_seconds", "fp_serve_requests_total",
    "fp_serve_request_duration_seconds_bucket", "fp_serve_feature_statuses_total", "fp_serve_fallbacks_total",
    "fp_rollout_weight", "fp_rollout_gate_value",
}

#: Grafana's variables, replaced by values of the same kind before parsing (PromQL does not know them).
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h", "${contract}": ".*",
                     "$contract": ".*"}


def flink_reporter_name(scope: str, metric: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_:]", "_", f"flink_{scope}_{metric}")


def sample_names(family_name: str, family_type: str) -> set[str]:
    """The sample names a scrape shows for a family, as prometheus_client exposes them."""
    if family_type == "counter":
        return {f"{family_name}_total", f"{family_name}_created"}
    if family_type in ("histogram", "gaugehistogram"):
        return {f"{family_name}_{suffix}" for suffix in ("bucket", "sum", "count", "created", "gsum", "gcount")}
    if family_type == "summary":
        return {family_name, f"{family_name}_sum", f"{family_name}_count", f"{family_name}_created"}
    if family_type == "info":
        return {f"{family_name}_info"}
    return {family_name}


def collectors_of(module: ModuleType) -> Iterator[object]:
    """The collectors a module defines: its module-level metric objects, and collectors of classes defined in it
    that it registered in the default registry (e.g. a custom collector computing its values at scrape time)."""
    seen: set[int] = set()
    for value in vars(module).values():
        own_collector = callable(getattr(value, "collect", None)) and inspect.getmodule(type(value)) is module
        if (isinstance(value, MetricWrapperBase) or own_collector) and id(value) not in seen:
            seen.add(id(value))
            yield value
    for collector in list(REGISTRY._collector_to_names):  # the registry offers no public listing
        if inspect.getmodule(type(collector)) is module and id(collector) not in seen:
            seen.add(id(collector))
            yield collector


def exported_names(module_name: str) -> set[str]:
    module = importlib.import_module(module_name)  # ModuleNotFoundError fails the test: never a skip
    names: set[str] = set()
    for collector in collectors_of(module):
        for family in collector.collect():  # type: ignore[attr-defined]
            names |= sample_names(family.name, family.type)
    return names


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, PromQL) of every target and every query variable of the dashboard."""
    dashboard = json.loads(DASHBOARD.read_text())
    queries = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            queries.append((panel["title"], target["expr"]))
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            definition = variable["definition"]
            match = re.fullmatch(r"label_values\((?P<selector>.+),\s*\w+\)", definition)
            assert match, f"variable {variable['name']}: unexpected query {definition!r}"
            queries.append((f"variable {variable['name']}", match.group("selector")))
    return queries


def queried_names(expr: str) -> set[str]:
    """Every metric name a PromQL expression selects, from the parsed expression (not a regex over its text)."""
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    names: set[str] = set()

    def visit(node: promql_parser.Expr) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            assert node.name, f"a selector without a metric name in {expr!r}"
            names.add(node.name)

    promql_parser.walk(promql_parser.parse(expr), pre_visit=visit)
    return names


def platform_names() -> set[str]:
    """Every sample name the platform's metric modules export."""
    names: set[str] = set()
    for module_name in METRIC_MODULES:
        names |= exported_names(module_name)
    return names


@pytest.mark.parametrize("module_name", METRIC_MODULES)
def test_each_metrics_module_exists_and_exports_fp_families(module_name: str) -> None:
    names = exported_names(module_name)
    assert names, f"{module_name} defines no Prometheus collector at module level"
    assert all(name.startswith(("fp_",)) for name in names), sorted(names)


def test_every_metric_the_dashboard_queries_is_one_the_platform_or_flink_exports() -> None:
    exported = platform_names()
    flink_names = {flink_reporter_name(scope, metric) for scope, metric in FLINK_DOCUMENTED_METRICS}
    unknown = {(title, name) for title, expr in dashboard_queries() for name in queried_names(expr)
               if name not in exported | flink_names}
    assert not unknown, f"the dashboard queries metrics nothing exports: {sorted(unknown)}"


def test_the_dashboard_shows_what_an_operator_needs() -> None:
    queried = {name for _, expr in dashboard_queries() for name in queried_names(expr)}
    assert queried >= REQUIRED_SERIES, f"missing from the dashboard: {sorted(REQUIRED_SERIES - queried)}"
    assert any(name.startswith("flink_taskmanager_") for name in queried)
    assert any(name.startswith("fp_stage_") for name in queried)


def test_the_name_check_knows_how_each_family_type_is_scraped() -> None:
    """The check cannot pass a wrong suffix: `_count` exists only for histograms and summaries, `_total` only for
    counters, and a flink name follows the reporter's rule."""
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

    registry = CollectorRegistry()
    families = [Counter("t_requests", "c", registry=registry), Gauge("t_in_flight", "g", registry=registry),
                Histogram("t_latency_seconds", "h", registry=registry)]
    derived = set().union(*(sample_names(f.name, f.type) for c in families for f in c.collect()))
    scraped = {line.split(" ")[0].split("{")[0] for line in generate_latest(registry).decode().splitlines()
               if line and not line.startswith("#")}
    assert scraped <= derived
    assert "t_requests_count" not in derived and "t_in_flight_total" not in derived
    assert flink_reporter_name("taskmanager", "Status.JVM.Memory.Heap.Used") == \
        "flink_taskmanager_Status_JVM_Memory_Heap_Used"


def test_queried_names_come_from_the_parsed_expression() -> None:
    expr = ('histogram_quantile(0.99, sum by (le, route) (rate(a_bucket{route=~"x"}[$__rate_interval]))) '
            '/ on() group_left() max(b offset 5m) and time() - c')
    assert queried_names(expr) == {"a_bucket", "b", "c"}
    with pytest.raises(ValueError):
        queried_names("sum(rate(a[5m])")  # unbalanced: a parse error, not a silent pass


def test_every_panel_uses_the_provisioned_datasource() -> None:
    import yaml

    uid = yaml.safe_load(DATASOURCE.read_text())["datasources"][0]["uid"]
    dashboard = json.loads(DASHBOARD.read_text())
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == uid, panel["title"]
        assert all(target["datasource"]["uid"] == uid for target in panel["targets"]), panel["title"]
