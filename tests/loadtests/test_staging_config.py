"""The staging stack's nginx and Prometheus configurations follow the chart, and nginx accepts its own."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from limits import parse

from loadtests import mix
from loadtests.shapes import SHAPES, ShapeParams, build
from loadtests.staging import CHART, LABELS, ROOT, nginx_config, prometheus_config, service_env
from tests.support.helm import one, render


def test_the_stack_copies_the_charts_current_values() -> None:
    values = yaml.safe_load((ROOT / "charts" / "inkwell" / "values.yaml").read_text())
    in_chart = {
        "proxy_body_size": values["ingress"]["proxyBodySize"],
        "timeout_seconds": values["ingress"]["timeoutSeconds"],
        "live_timeout_seconds": values["ingress"]["liveTimeoutSeconds"],
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


@pytest.mark.slow  # helm, from the Kubernetes toolchain
def test_the_stack_sets_the_rate_limits_the_chart_renders_with_redis() -> None:
    sets = {
        "secret.secretKey": "k" * 32,
        "secret.databaseUrl": "postgresql+asyncpg://x@db/inkwell",
        "redis.enabled": "true",
        "secret.redisUrl": "redis://redis:6379/0",
    }
    config = one(render(**sets), "ConfigMap", "-inkwell")["data"]
    in_chart = {name: value for name, value in config.items() if name.startswith("INKWELL_RATE_LIMIT")}
    stack = service_env("postgresql+asyncpg://x@db/inkwell", "redis://redis:6379/0", "k" * 32, {})
    assert in_chart == {name: value for name, value in stack.items() if name.startswith("INKWELL_RATE_LIMIT")}
    assert in_chart["INKWELL_RATE_LIMITS_ENABLED"] == "true"
    assert len(in_chart) == 8


# Read, not imported: importing loadtests.conduit imports locust, which monkey-patches the process.
_AUTHORS = re.search(r"^AUTHORS_PER_PROCESS = (\d+)", (ROOT / "loadtests" / "conduit.py").read_text(), re.M)
assert _AUTHORS is not None
AUTHORS_PER_PROCESS = int(_AUTHORS[1])


def per_minute(setting: str) -> float:
    rate = parse(str(CHART[setting]))
    return rate.amount * 60 / rate.get_expiry()


def test_the_mix_at_every_default_shape_trips_none_of_the_stacks_limits() -> None:
    """Bounds on what locust sends from its one address at the default shapes (the ramp's 100 users
    are the most), each user running a task (of at most two requests) every THINK_SECONDS[0] at
    the quickest, every signed-in reader and writer registering when it starts."""
    schedules = [build(shape, ShapeParams()) for shape in SHAPES]
    users = max(stage.users for schedule in schedules for stage in schedule.stages)

    def arrivals(schedule: object) -> int:
        """The most users a schedule adds within one minute."""
        targets = [tick[0] for t in range(0, 7200) if (tick := schedule.tick(t)) is not None]  # type: ignore[attr-defined]
        return max(max(targets[t : t + 61]) - targets[t] for t in range(len(targets))) + targets[0]

    arriving = max(arrivals(schedule) for schedule in schedules)
    total = sum(mix.USER_WEIGHTS.values())
    signing_up = (mix.USER_WEIGHTS["signed_in"] + mix.USER_WEIGHTS["writer"]) / total
    writers = mix.USER_WEIGHTS["writer"] / total
    tasks_per_minute = 60 / mix.THINK_SECONDS[0]
    relogin = mix.WRITER["login"] / sum(mix.WRITER.values())

    assert users == 100
    assert arriving == 50
    assert per_minute("rate_limit_reads") >= users * tasks_per_minute * 2
    assert per_minute("rate_limit_registration") >= arriving * signing_up + AUTHORS_PER_PROCESS
    # Logins: writers now and then, and with INKWELL_LOADTEST_EMAIL every user as it starts.
    assert per_minute("rate_limit_login") >= arriving + users * writers * tasks_per_minute * relogin
    # Writes are per user: one user's tasks, and a signed-in reader's follows as it starts.
    assert per_minute("rate_limit_writes") >= tasks_per_minute * 2 + AUTHORS_PER_PROCESS
    # Locust's logins use the right password: the backoff never starts.


def test_nginx_config_routes_the_ingress_paths_to_every_service(tmp_path: Path) -> None:
    config = nginx_config(prefix=tmp_path, temp=tmp_path / "temp", port=8080, upstreams=[9001, 9002])
    directives = [line for line in config.splitlines() if not line.strip().startswith("#")]
    assert not re.findall(r"@[A-Z_]+@", "\n".join(directives)), "a placeholder left unfilled"
    assert "server 127.0.0.1:9001;" in config
    assert "server 127.0.0.1:9002;" in config
    assert f"client_max_body_size {CHART['proxy_body_size']};" in config
    assert f"proxy_read_timeout {CHART['timeout_seconds']}s;" in config
    assert f"proxy_read_timeout {CHART['live_timeout_seconds']}s;" in config  # the WebSocket's
    assert "location = /api/live {" in config
    assert "proxy_set_header Connection $connection_upgrade;" in config
    locations = sorted(
        line.split("{")[0].strip()
        for line in config.splitlines()
        if "proxy_pass" in line and line.strip().startswith("location")
    )
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
