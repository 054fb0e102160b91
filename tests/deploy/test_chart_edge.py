"""The chart's edge: /metrics on its own port (the container's and the Service's `metrics` port, the
ServiceMonitor's endpoint), probes unchanged on the service port; the Host names it passes (its
ingress host, the Service's in-cluster names, a port-forward's); HSTS only with TLS; the docs switch."""

from __future__ import annotations

import pytest

from tests.support.helm import CHART, one, render

pytestmark = pytest.mark.slow

DEV = CHART / "ci" / "development-values.yaml"
PROD = CHART / "ci" / "production-values.yaml"


def test_metrics_are_scraped_on_their_own_port_and_probes_stay_on_the_service_port() -> None:
    objects = render(PROD)
    (container,) = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports == {"http": 8000, "metrics": 9100}
    config = one(objects, "ConfigMap", "-inkwell")["data"]
    assert config["INKWELL_METRICS_PORT"] == "9100"
    service_ports = {port["name"]: port["targetPort"] for port in one(objects, "Service")["spec"]["ports"]}
    assert service_ports == {"http": "http", "metrics": "metrics"}
    (endpoint,) = one(objects, "ServiceMonitor")["spec"]["endpoints"]
    assert (endpoint["port"], endpoint["path"]) == ("metrics", "/metrics")
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["port"] == "http"


def test_without_metrics_there_is_no_metrics_port_nor_scrape() -> None:
    objects = render(PROD, **{"metrics.enabled": "false"})
    (container,) = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert [port["name"] for port in container["ports"]] == ["http"]
    assert [port["name"] for port in one(objects, "Service")["spec"]["ports"]] == ["http"]
    assert "INKWELL_METRICS_PORT" not in one(objects, "ConfigMap", "-inkwell")["data"]
    assert not [o for o in objects if o["kind"] == "ServiceMonitor"]


def test_the_allowed_hosts_are_the_ingress_host_the_services_names_and_extras() -> None:
    config = one(
        render(PROD, **{"config.extraAllowedHosts[0]": "*.inkwell.example.org"}), "ConfigMap", "-inkwell"
    )
    hosts = config["data"]["INKWELL_ALLOWED_HOSTS"].split(",")
    assert hosts == [
        "inkwell.example.com",
        "ink-inkwell",  # helm test calls the Service by its short name
        "ink-inkwell.apps",
        "ink-inkwell.apps.svc",
        "ink-inkwell.apps.svc.cluster.local",
        "localhost",  # kubectl port-forward
        "127.0.0.1",
        "*.inkwell.example.org",
    ]
    without_ingress = one(render(PROD, **{"ingress.enabled": "false"}), "ConfigMap", "-inkwell")["data"]
    assert "inkwell.example.com" not in without_ingress["INKWELL_ALLOWED_HOSTS"].split(",")


def test_hsts_is_set_only_when_the_ingress_serves_tls() -> None:
    assert one(render(PROD), "ConfigMap", "-inkwell")["data"]["INKWELL_HSTS_SECONDS"] == "31536000"
    assert one(render(DEV), "ConfigMap", "-inkwell")["data"]["INKWELL_HSTS_SECONDS"] == "0"  # no TLS
    shorter = one(render(PROD, **{"ingress.tls.hstsSeconds": "600"}), "ConfigMap", "-inkwell")["data"]
    assert shorter["INKWELL_HSTS_SECONDS"] == "600"


def test_the_docs_follow_their_switch() -> None:
    assert one(render(PROD), "ConfigMap", "-inkwell")["data"]["INKWELL_DOCS_ENABLED"] == "true"
    off = one(render(PROD, **{"config.docsEnabled": "false"}), "ConfigMap", "-inkwell")["data"]
    assert off["INKWELL_DOCS_ENABLED"] == "false"
