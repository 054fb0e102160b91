"""The runbooks' steps as the inkwell-ops ServiceAccount, authenticated by a token of its own (not
impersonated): `events`, `logs --previous --since`, `readyz` through the API server's pod proxy and `top`,
on the real test cluster. KWOK keeps no container logs and its pods' addresses answer nothing, so there
the log and the probe are refused by the cluster itself, pod by pod, and never by RBAC; metrics.k8s.io is
not installed, which `top` must say instead of a 403 or a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.ops.conftest import Ops, install
from tests.ops.test_rbac import in_namespace
from tests.support.kube import Kube

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def token_kube(kube: Kube, tmp_path_factory: pytest.TempPathFactory) -> Kube:
    """A kubeconfig whose user is the ServiceAccount's token, as a CI job or an operator would get it."""
    kube.kubectl("apply", "-f", "-", stdin=in_namespace(kube.namespace))
    token = kube.kubectl("create", "token", "inkwell-ops", "--duration", "1h").stdout.strip()
    config = yaml.safe_load(kube.run("kubectl", "config", "view", "--raw", "--minify").stdout)
    config["users"] = [{"name": "inkwell-ops", "user": {"token": token}}]
    for context in config["contexts"]:
        context["context"]["user"] = "inkwell-ops"
        context["context"]["namespace"] = kube.namespace
    path = Path(tmp_path_factory.mktemp("token")) / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return Kube(kubeconfig=str(path), bin_dir=kube.bin_dir, namespace=kube.namespace)


@pytest.fixture(scope="module")
def ops(kube: Kube, token_kube: Kube) -> Ops:
    install(kube, "blog", "replicaCount=2")
    return Ops(token_kube, "blog")


def _pods(ops: Ops) -> list[str]:
    return sorted(p["metadata"]["name"] for p in ops.pods())


def test_the_token_is_the_service_account_and_nothing_more(token_kube: Kube) -> None:
    whoami = json.loads(token_kube.kubectl("auth", "whoami", "-o", "json").stdout)
    assert whoami["status"]["userInfo"]["username"].endswith(":inkwell-ops")

    def can(verb: str, *resource: str) -> str:
        return token_kube.kubectl("auth", "can-i", verb, *resource, check=False).stdout.strip()

    assert can("get", "pods", "--subresource=proxy") == "yes"
    assert can("get", "pods", "--subresource=log") == "yes"
    assert can("create", "pods", "--subresource=portforward") == "no"
    assert can("create", "pods", "--subresource=proxy") == "no"
    assert can("create", "pods", "--subresource=exec") == "no"
    assert can("delete", "pods") == "no"


def test_events_show_what_happened_to_the_releases_objects(ops: Ops) -> None:
    code, data = ops.json("events", "--since", "10m")
    assert code == 0
    seen = {(e["object"], e["reason"]) for e in data["events"]}
    for pod in _pods(ops):
        assert (f"pod/{pod}", "Scheduled") in seen
    assert any(obj.startswith("replicaset/blog-inkwell-") and r == "SuccessfulCreate" for obj, r in seen)
    assert any(obj == "deployment/blog-inkwell" and r == "ScalingReplicaSet" for obj, r in seen)
    warnings = ops("events", "--warnings")
    assert warnings.exit_code == 0, warnings.stderr
    assert "Scheduled" not in warnings.stdout


def test_logs_of_every_pod_with_previous_and_since_are_asked_of_the_cluster(ops: Ops) -> None:
    result = ops("logs", "--previous", "--since", "15m")
    assert "forbidden" not in (result.stdout + result.stderr).lower()
    # KWOK's kubelet keeps no logs: it answers each pod, and the CLI says so pod by pod.
    assert result.exit_code == 1
    for pod in _pods(ops):
        assert f"[{pod}] (no log: reading the log of {pod}: no logs found" in result.stdout


def test_readyz_asks_each_pod_through_the_api_servers_pod_proxy(ops: Ops) -> None:
    code, data = ops.json("readyz")
    pods = data["pods"]
    assert sorted(p["pod"] for p in pods) == _pods(ops)
    assert all(p["port"] == 8000 for p in pods)
    for pod in pods:
        # RBAC's refusal would name the resource; the account may ask.
        assert "cannot get resource" not in pod["answer"], pod
        # KWOK's pods have addresses nothing listens on: the API server says it cannot reach them.
        assert (pod["ready"], pod["reached"]) == (False, False)
        assert "through the API server" in pod["answer"]
    assert code == 1


def test_top_says_metrics_k8s_io_is_not_installed(ops: Ops) -> None:
    result = ops("top")
    assert result.exit_code == 1
    assert "metrics.k8s.io is not served by this cluster: no metrics-server is installed" in result.stderr
    assert "forbidden" not in result.stderr.lower()
