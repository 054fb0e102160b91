"""Live updates in the chart (live:, ingress.liveTimeoutSeconds, ingress.controller): their settings
reach the service as the values say; /api/live gets an Ingress of its own whose timeouts outlast a
socket, for either NGINX controller; the pods get time to close their sockets once drained; and
several pods without Redis, which would each deliver only the events written through them, fail to
render."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.deploy.budget import DEV, PROD, config, failure
from tests.support.helm import CHART, one, render

pytestmark = pytest.mark.slow

STAGING = CHART / "ci" / "staging-values.yaml"
F5 = {"ingress.controller": "f5-nginx"}


def live_settings(objects: list[dict[str, Any]]) -> dict[str, str]:
    return {name: value for name, value in config(objects).items() if name.startswith("INKWELL_LIVE")}


def ingresses(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == "Ingress"}


def paths(ingress: dict[str, Any]) -> dict[str, str]:
    (rule,) = ingress["spec"]["rules"]
    return {p["path"]: p["pathType"] for p in rule.get("http", {}).get("paths", [])}


def grace(objects: list[dict[str, Any]]) -> int:
    seconds = one(objects, "Deployment")["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert isinstance(seconds, int)
    return seconds


def test_the_settings_reach_the_service_as_the_values_say() -> None:
    assert live_settings(render(PROD)) == {
        "INKWELL_LIVE_ENABLED": "true",
        "INKWELL_LIVE_MAX_CONNECTIONS_PER_USER": "8",
        "INKWELL_LIVE_MAX_CONNECTIONS_PER_IP": "64",
        "INKWELL_LIVE_QUEUE_EVENTS": "256",
        "INKWELL_LIVE_HEARTBEAT_SECONDS": "20",
        "INKWELL_LIVE_IDLE_SECONDS": "300",
        "INKWELL_LIVE_REPLAY_EVENTS": "10000",
        "INKWELL_LIVE_COALESCE_SECONDS": "1",
        "INKWELL_LIVE_MAX_TOPICS": "100",
    }
    changed = live_settings(
        render(PROD, **{"live.queueEvents": "64", "live.coalesceSeconds": "2", "live.heartbeatSeconds": "15"})
    )
    assert changed["INKWELL_LIVE_QUEUE_EVENTS"] == "64"
    assert changed["INKWELL_LIVE_COALESCE_SECONDS"] == "2"
    assert changed["INKWELL_LIVE_HEARTBEAT_SECONDS"] == "15"


def test_switched_off_the_service_is_told_and_nothing_else_is_rendered_for_it() -> None:
    objects = render(PROD, **{"live.enabled": "false"})
    assert live_settings(objects) == {"INKWELL_LIVE_ENABLED": "false"}
    assert set(ingresses(objects)) == {"ink-inkwell"}
    on = render(PROD)
    assert set(ingresses(on)) == {"ink-inkwell", "ink-inkwell-live"}
    # The sockets' close handshake is granted only where there are sockets.
    assert grace(on) == grace(objects) + 10


@pytest.mark.parametrize(
    ("values", "sets", "pods"),
    [
        (PROD, {"redis.enabled": "false"}, "autoscaling up to 12 pods"),
        (DEV, {"replicaCount": "2"}, "replicaCount 2, workers 1"),
        (DEV, {"workers": "2"}, "replicaCount 1, workers 2"),
        (DEV, {"autoscaling.enabled": "true"}, "autoscaling up to 10 pods"),
    ],
    ids=["production-without-redis", "two-pods", "two-workers", "autoscaling"],
)
def test_several_processes_without_redis_are_refused_when_asked_for(
    values: Any, sets: dict[str, str], pods: str
) -> None:
    message = failure(values, **sets, **{"live.enabled": "true"})
    assert f"live.enabled across several processes ({pods}) needs Redis" in message
    assert (
        "set redis.enabled and its URL (secret.redisUrl, or the key redis-url of secret.existingSecret)"
        in message
    )


def test_by_default_on_with_redis_or_in_one_process_and_off_across_several_without_redis() -> None:
    assert live_settings(render(PROD))["INKWELL_LIVE_ENABLED"] == "true"  # with its Redis
    assert live_settings(render(DEV))["INKWELL_LIVE_ENABLED"] == "true"  # one pod of one worker
    for sets in ({"replicaCount": "2"}, {"workers": "2"}, {"autoscaling.enabled": "true"}):
        assert live_settings(render(DEV, **sets)) == {"INKWELL_LIVE_ENABLED": "false"}, sets
    # The chart's own defaults (two pods, no Redis) render, without live updates.
    required = {"secret.secretKey": "k" * 32, "secret.databaseUrl": "postgresql+asyncpg://x@db/inkwell"}
    assert live_settings(render(**required)) == {"INKWELL_LIVE_ENABLED": "false"}


def test_one_pod_without_redis_or_redis_from_extra_env_or_live_off_renders() -> None:
    # One pod fans out in its own process.
    assert live_settings(render(DEV))["INKWELL_LIVE_ENABLED"] == "true"
    extra = {"extraEnv[0].name": "INKWELL_REDIS_URL", "extraEnv[0].value": "redis://redis:6379/0"}
    assert live_settings(render(DEV, replicaCount="3", **extra))["INKWELL_LIVE_ENABLED"] == "true"
    assert live_settings(render(DEV, replicaCount="3", **{"live.enabled": "false"})) == {
        "INKWELL_LIVE_ENABLED": "false"
    }


def test_api_live_has_its_own_ingress_with_timeouts_that_outlast_a_socket_on_ingress_nginx() -> None:
    found = ingresses(render(PROD))
    api, live = found["ink-inkwell"], found["ink-inkwell-live"]
    assert paths(live) == {"/api/live": "Exact"}
    assert "/api/live" not in paths(api)
    assert paths(api)["/api"] == "Prefix"
    annotations = live["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"] == "3600"
    assert annotations["nginx.ingress.kubernetes.io/proxy-send-timeout"] == "3600"
    assert annotations["nginx.ingress.kubernetes.io/proxy-body-size"] == "1m"
    assert api["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-read-timeout"] == "30"
    # Longer than the heartbeat by far: a healthy socket always has a frame within the timeout.
    assert int(annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"]) > 20 * 3
    assert not any("snippet" in name or name.startswith("nginx.org/") for name in annotations)
    for ingress in (api, live):
        assert ingress["spec"]["ingressClassName"] == "nginx"
        assert ingress["spec"]["tls"] == api["spec"]["tls"]
        assert ingress["spec"]["rules"][0]["host"] == "inkwell.example.com"
    longer = ingresses(render(PROD, **{"ingress.liveTimeoutSeconds": "7200"}))["ink-inkwell-live"]
    assert longer["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-read-timeout"] == "7200"


def test_on_f5_nginx_a_mergeable_master_holds_the_host_and_minions_the_paths_and_timeouts() -> None:
    objects = render(PROD, **F5)
    found = ingresses(objects)
    assert set(found) == {"ink-inkwell-host", "ink-inkwell", "ink-inkwell-live"}
    master, api, live = found["ink-inkwell-host"], found["ink-inkwell"], found["ink-inkwell-live"]
    assert master["metadata"]["annotations"]["nginx.org/mergeable-ingress-type"] == "master"
    assert paths(master) == {}
    assert master["spec"]["tls"][0]["hosts"] == ["inkwell.example.com"]
    service = one(objects, "Service")["metadata"]["name"]
    for minion, timeout in ((api, "30s"), (live, "3600s")):
        annotations = minion["metadata"]["annotations"]
        assert annotations["nginx.org/mergeable-ingress-type"] == "minion"
        assert annotations["nginx.org/proxy-read-timeout"] == timeout
        assert annotations["nginx.org/proxy-send-timeout"] == timeout
        assert annotations["nginx.org/client-max-body-size"] == "1m"
        assert not any(name.startswith("nginx.ingress.kubernetes.io/") for name in annotations)
        # TLS and the host's other settings belong to the master only.
        assert "tls" not in minion["spec"]
        assert minion["spec"]["rules"][0]["host"] == "inkwell.example.com"
    # Upgrade and Connection pass upstream only for the Services F5's controller is told of.
    assert live["metadata"]["annotations"]["nginx.org/websocket-services"] == service
    assert "nginx.org/websocket-services" not in api["metadata"]["annotations"]
    assert paths(live) == {"/api/live": "Exact"}
    without_live = ingresses(render(PROD, **F5, **{"live.enabled": "false"}))
    assert set(without_live) == {"ink-inkwell-host", "ink-inkwell"}


def test_an_unknown_controller_fails_the_schema() -> None:
    assert "at '/ingress/controller': value must be one of" in failure(
        PROD, **{"ingress.controller": "traefik"}
    )
    assert "at '/live/queueEvents'" in failure(PROD, **{"live.queueEvents": "0"})


def test_the_grace_period_covers_the_drain_the_in_flight_requests_and_the_sockets_close() -> None:
    objects = render(PROD, **{"lifecycle.drainSeconds": "7", "lifecycle.gracefulTimeoutSeconds": "25"})
    # preStop drain, in-flight grace (sockets are closed with 1012 as it starts), the tracer's flush
    # and room to spare, and the close handshake of a client that never answers (10 s).
    assert grace(objects) == 7 + 25 + 10 + 10


@pytest.mark.parametrize("values", [PROD, STAGING], ids=lambda p: p.name)
def test_with_redis_and_a_network_policy_the_pods_may_reach_redis(values: Any) -> None:
    settings = yaml.safe_load(values.read_text())
    assert settings["redis"]["enabled"]
    assert settings["networkPolicy"]["enabled"]
    policy = one(render(values), "NetworkPolicy", "-inkwell")
    ports = {port["port"] for rule in policy["spec"]["egress"] for port in rule["ports"]}
    assert 6379 in ports
    # The WebSocket comes in as the API does: from the ingress controller, to the http port.
    (from_ingress, *_) = policy["spec"]["ingress"]
    assert from_ingress["ports"] == [{"port": "http", "protocol": "TCP"}]
