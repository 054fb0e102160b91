"""The staging stack's nginx and Prometheus configurations follow the chart, and nginx accepts its own."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from loadtests.staging import CHART, LABELS, ROOT, nginx_config, prometheus_config
from tests.support.helm import one, render


def test_the_stack_copies_the_charts_current_values() -> None:
    values = yaml.safe_load((ROOT / "charts" / "inkwell" / "values.yaml").read_text())
    in_chart = {
        "proxy_body_size": values["ingress"]["proxyBodySize"],
        "timeout_seconds": values["ingress"]["timeoutSeconds"],
    }
    assert in_chart == {key: CHART[key] for key in in_chart}


@pytest.mark.slow  # helm, from the Kubernetes toolchain
def test_the_stack_runs_the_pools_and_budget_the_chart_derives_for_its_default_two_pods() -> None:
    values = yaml.safe_load((ROOT / "charts" / "inkwell" / "values.yaml").read_text())
    assert values["replicaCount"] == 2  # as the stack runs two service processes
    sets = {"secret.secretKey": "k" * 32, "secret.databaseUrl": "postgresql+asyncpg://x@db/inkwell"}
    config = one(render(**sets), "ConfigMap", "-inkwell")["data"]
    assert {
        "db_pool_size": int(config["INKWELL_DB_POOL_SIZE"]),
        "db_max_overflow": int(config["INKWELL_DB_MAX_OVERFLOW"]),
        "db_connection_budget": int(config["INKWELL_DB_CONNECTION_BUDGET"]),
    } == {key: CHART[key] for key in ("db_pool_size", "db_max_overflow", "db_connection_budget")}


def test_nginx_config_routes_the_ingress_paths_to_every_service(tmp_path: Path) -> None:
    config = nginx_config(prefix=tmp_path, temp=tmp_path / "temp", port=8080, upstreams=[9001, 9002])
    directives = [line for line in config.splitlines() if not line.strip().startswith("#")]
    assert not re.findall(r"@[A-Z_]+@", "\n".join(directives)), "a placeholder left unfilled"
    assert "server 127.0.0.1:9001;" in config
    assert "server 127.0.0.1:9002;" in config
    assert f"client_max_body_size {CHART['proxy_body_size']};" in config
    assert f"proxy_read_timeout {CHART['timeout_seconds']}s;" in config
    locations = sorted(line.split("{")[0].strip() for line in config.splitlines() if "proxy_pass" in line)
    assert locations == [
        "location /api/",
        "location /docs/",
        "location /openapi.json/",
        "location /redoc/",
        "location = /api",
        "location = /docs",
        "location = /openapi.json",
        "location = /redoc",
    ]


@pytest.mark.skipif(shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists(), reason="no nginx")
def test_nginx_accepts_the_config(tmp_path: Path) -> None:
    (tmp_path / "temp").mkdir()
    path = tmp_path / "nginx.conf"
    path.write_text(nginx_config(prefix=tmp_path, temp=tmp_path / "temp", port=8080, upstreams=[9001]))
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    result = subprocess.run(
        [nginx, "-t", "-p", str(tmp_path), "-c", str(path), "-e", str(tmp_path / "error.log")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_prometheus_scrapes_each_process_as_its_own_pod_with_the_charts_labels() -> None:
    config = prometheus_config([Path("/rules/recording.yaml")], [9001, 9002])
    assert config["rule_files"] == ["/rules/recording.yaml"]
    targets = config["scrape_configs"][0]["static_configs"]
    assert targets == [
        {"targets": ["127.0.0.1:9001"], "labels": {**LABELS, "pod": "inkwell-0"}},
        {"targets": ["127.0.0.1:9002"], "labels": {**LABELS, "pod": "inkwell-1"}},
    ]
    assert {"app": "inkwell", "namespace": "staging", "release": "inkwell"}.items() <= LABELS.items()
