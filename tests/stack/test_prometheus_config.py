"""monitoring/prometheus.yml scrapes exactly the compose services that expose metrics, at the port each process
really listens on, and Grafana's provisioning points at the compose Prometheus and the mounted dashboards.

A service says it exposes metrics with the labels ``fp.metrics.port`` / ``fp.metrics.path`` (docker-compose.yml);
the port is then checked against the process's own configuration: Flink's reporter port in the image's
configuration, ``serve --port``, ``stream --metrics-port``.
"""

from __future__ import annotations

import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from pipelines.config import PROJECT_ROOT

PROMETHEUS_YML = PROJECT_ROOT / "monitoring" / "prometheus.yml"
FLINK_REPORTER = PROJECT_ROOT / "docker" / "flink" / "metrics-reporter.yaml"
GRAFANA = PROJECT_ROOT / "monitoring" / "grafana"


def scrape_endpoints(config: dict[str, Any]) -> set[tuple[str, int, str]]:
    """(host, port, path) of every static or DNS-discovered target."""
    endpoints = set()
    for job in config["scrape_configs"]:
        path = job.get("metrics_path", "/metrics")
        for static in job.get("static_configs", []):
            for target in static["targets"]:
                host, _, port = target.rpartition(":")
                endpoints.add((host, int(port), path))
        for dns in job.get("dns_sd_configs", []):
            assert dns.get("type") == "A", f"{job['job_name']}: only A-record discovery is used (the port is set)"
            endpoints |= {(name, int(dns["port"]), path) for name in dns["names"]}
        unknown = set(job) - {"job_name", "metrics_path", "static_configs", "dns_sd_configs", "scrape_interval",
                              "scrape_timeout"}
        assert not unknown, f"{job['job_name']}: keys this test does not understand: {unknown}"
    return endpoints


def compose_metrics_endpoints(check: ModuleType, services: dict[str, Any]) -> set[tuple[str, int, str]]:
    endpoints = set()
    for name, spec in services.items():
        labels = check.labels_of(spec)
        if check.METRICS_PORT_LABEL in labels:
            endpoints.add((name, int(labels[check.METRICS_PORT_LABEL]), labels.get(check.METRICS_PATH_LABEL,
                                                                                     "/metrics")))
    return endpoints


def listening_port(spec: dict[str, Any]) -> int:
    """The metrics port a service's process is configured to listen on, from its own configuration."""
    command = spec.get("command")
    words = command.split() if isinstance(command, str) else list(command or [])
    if words in (["jobmanager"], ["taskmanager"]):
        return int(yaml.safe_load(FLINK_REPORTER.read_text())["metrics.reporter.prom.port"])
    if words[:2] == ["feature-platform", "serve"]:
        return int(words[words.index("--port") + 1])
    if words[:2] == ["feature-platform", "stream"]:
        assert words[words.index("--metrics-host") + 1] == "0.0.0.0", "Prometheus scrapes it from another container"
        return int(words[words.index("--metrics-port") + 1])
    raise AssertionError(f"no rule to find the metrics port of command {words}")


@pytest.fixture(scope="module")
def services(check: ModuleType) -> dict[str, Any]:
    return check.load_compose()["services"]


def test_prometheus_scrapes_exactly_the_services_labelled_with_metrics(check: ModuleType, services: dict) -> None:
    config = yaml.safe_load(PROMETHEUS_YML.read_text())
    jobs = [job["job_name"] for job in config["scrape_configs"]]
    assert len(jobs) == len(set(jobs)), f"duplicate job names: {jobs}"
    assert scrape_endpoints(config) == compose_metrics_endpoints(check, services)


def test_every_process_with_metrics_is_scraped(check: ModuleType, services: dict) -> None:
    scraped = {host for host, _, _ in scrape_endpoints(yaml.safe_load(PROMETHEUS_YML.read_text()))}
    assert {"jobmanager", "taskmanager", "stream", "serve"} <= scraped


def test_each_labelled_port_is_the_port_the_process_listens_on(check: ModuleType, services: dict) -> None:
    for name, port, _ in compose_metrics_endpoints(check, services):
        assert listening_port(services[name]) == port, name


def test_the_flink_image_configures_the_prometheus_reporter() -> None:
    reporter = yaml.safe_load(FLINK_REPORTER.read_text())
    assert reporter["metrics.reporter.prom.factory.class"] == \
        "org.apache.flink.metrics.prometheus.PrometheusReporterFactory"
    dockerfile = (PROJECT_ROOT / "docker" / "flink" / "Dockerfile").read_text()
    assert "metrics-reporter.yaml" in dockerfile and "plugins/metrics-prometheus" in dockerfile


def _mounts(spec: dict[str, Any]) -> dict[str, str]:
    """Container path -> source of a service's short-syntax volumes."""
    mounts = {}
    for volume in spec.get("volumes", []):
        source, target = volume.split(":")[:2]
        mounts[target] = source
    return mounts


def test_prometheus_reads_this_file(services: dict) -> None:
    spec = services["prometheus"]
    config_flag = next(arg for arg in spec["command"] if arg.startswith("--config.file="))
    target = config_flag.partition("=")[2]
    assert (PROJECT_ROOT / _mounts(spec)[target]).resolve() == PROMETHEUS_YML


def test_grafana_provisioning_points_at_the_compose_prometheus_and_the_mounted_dashboards(services: dict) -> None:
    datasource = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())
    url = datasource["datasources"][0]["url"]
    host, port = re.fullmatch(r"http://([\w-]+):(\d+)", url).groups()
    assert host in services and port == "9090"  # Prometheus' own listen port (no --web.listen-address override)
    assert not any("--web.listen-address" in arg for arg in services["prometheus"]["command"])

    provider = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "feature-platform.yml").read_text())
    mounts = _mounts(services["grafana"])
    dashboards_source = mounts[provider["providers"][0]["options"]["path"]]
    assert (PROJECT_ROOT / dashboards_source).resolve() == GRAFANA / "dashboards"
    assert (PROJECT_ROOT / mounts["/etc/grafana/provisioning"]).resolve() == GRAFANA / "provisioning"
    home = services["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert Path(home).name in {p.name for p in (GRAFANA / "dashboards").glob("*.json")}
