"""The chart on a real API server: the production values install with every object accepted
(prometheus-operator CRDs included), the migration hook runs first, an upgrade with a new image
rolls out, and an upgrade to pods that never become ready fails by its deadline while the old
pods keep serving."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.support.helm import CHART
from tests.support.kube import Kube, prometheus_operator_crds

pytestmark = pytest.mark.slow

RELEASE = "inkwell"
PROD = CHART / "ci" / "production-values.yaml"


@pytest.fixture(scope="module")
def installed(kube: Kube) -> Iterator[Kube]:
    for crd in prometheus_operator_crds():
        kube.run("kubectl", "apply", "--server-side", "-f", str(crd))
    kube.run(
        "kubectl",
        "wait",
        "--for=condition=Established",
        "crd/servicemonitors.monitoring.coreos.com",
        "--timeout=60s",
    )
    kube.kubectl(
        "create", "secret", "generic", "inkwell-production",
        "--from-literal=secret-key=production-secret-production-secret-0123",
        "--from-literal=database-url=postgresql+asyncpg://inkwell:pw@postgres:5432/inkwell",
        "--from-literal=redis-url=redis://redis:6379/0",
    )  # fmt: skip
    kube.run(
        "helm", "install", RELEASE, str(CHART), "-n", kube.namespace, "-f", str(PROD),
        "--set", "image.tag=0.1.0", "--wait", "--timeout", "180s",
    )  # fmt: skip
    yield kube
    kube.run("helm", "uninstall", RELEASE, "-n", kube.namespace, check=False)


def _deployment(kube: Kube) -> dict[str, object]:
    return kube.get("deployment", RELEASE)


def _images(kube: Kube, *, ready_only: bool) -> set[str]:
    pods = json.loads(
        kube.kubectl(
            "get",
            "pods",
            "-l",
            "app.kubernetes.io/instance=inkwell,app.kubernetes.io/component!=migration",
            "-o",
            "json",
        ).stdout
    )["items"]
    return {
        container["image"]
        for pod in pods
        if not ready_only
        or any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", []))
        for container in pod["spec"]["containers"]
    }


def test_the_production_values_install_and_every_object_is_accepted(installed: Kube) -> None:
    for kind in ("deployment", "service", "ingress", "horizontalpodautoscaler", "poddisruptionbudget",
                 "networkpolicy", "serviceaccount", "configmap", "servicemonitor"):  # fmt: skip
        assert installed.get(kind, RELEASE)["metadata"]["labels"]["app.kubernetes.io/instance"] == RELEASE
    status = _deployment(installed)["status"]
    assert status["availableReplicas"] >= 1  # type: ignore[index]
    history = json.loads(
        installed.run("helm", "history", RELEASE, "-n", installed.namespace, "-o", "json").stdout
    )
    assert history[-1]["status"] == "deployed"


def test_an_upgrade_with_a_new_image_rolls_out(installed: Kube) -> None:
    installed.run(
        "helm", "upgrade", RELEASE, str(CHART), "-n", installed.namespace, "-f", str(PROD),
        "--set", "image.tag=0.2.0", "--wait", "--timeout", "180s",
    )  # fmt: skip
    installed.kubectl("rollout", "status", f"deployment/{RELEASE}", "--timeout=120s")
    assert _images(installed, ready_only=True) == {"ghcr.io/inkwell/inkwell:0.2.0"}


def test_an_upgrade_to_pods_that_never_become_ready_fails_and_the_old_pods_keep_serving(
    installed: Kube,
) -> None:
    failed = installed.run(
        "helm", "upgrade", RELEASE, str(CHART), "-n", installed.namespace, "-f", str(PROD),
        "--set", "image.tag=never-ready", "--set", "podLabels.inkwell\\.dev/simulate=never-ready",
        "--set", "progressDeadlineSeconds=10", "--wait", "--timeout", "60s",
        check=False,
    )  # fmt: skip
    assert failed.returncode != 0
    conditions = {c["type"]: c for c in _deployment(installed)["status"]["conditions"]}  # type: ignore[index]
    assert conditions["Progressing"]["reason"] == "ProgressDeadlineExceeded"
    # maxUnavailable 0: the pods of the last good release are still the ready ones.
    assert _images(installed, ready_only=True) == {"ghcr.io/inkwell/inkwell:0.2.0"}
    history = json.loads(
        installed.run("helm", "history", RELEASE, "-n", installed.namespace, "-o", "json").stdout
    )
    assert history[-1]["status"] == "failed"
