"""The staging stack's nginx and Prometheus configurations follow the chart, and nginx accepts its own."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from loadtests.staging import CHART, LABELS, ROOT, nginx_config, prometheus_config


def test_the_stack_copies_the_charts_current_values() -> None:
    values = yaml.safe_load((ROOT / "charts" / "inkwell" / "values.yaml").read_text())
    in_chart = {
        "proxy_body_size": values["ingress"]["proxyBodySize"],
        "timeout_seconds": values["ingress"]["timeoutSeconds"],
        "db_pool_size": values["config"]["dbPoolSize"],
        "db_max_overflow": values["config"]["dbMaxOverflow"],
    }
    assert in_chart == CHART


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
        "location = /api",
        "location = /docs",
        "location = /openapi.json",
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
