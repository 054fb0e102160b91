"""`helm test` as the README runs it, on the test cluster: the chart's test pod is created, finishes
and is reported as passed. KWOK runs no container, so a stage of ours (k8s/kwok/) finishes the pod
the way a passing check would; on a real cluster the check inside it is what decides."""

from __future__ import annotations

import pytest

from tests.support.helm import CHART
from tests.support.kube import Kube

pytestmark = pytest.mark.slow

VALUES = (
    "secret.secretKey=test-secret-test-secret-test-secret-0123",
    "secret.databaseUrl=postgresql+asyncpg://inkwell:inkwell@postgres:5432/inkwell",
    "migrations.enabled=false",
    "image.tag=0.1.0",
)


def test_helm_test_passes_on_the_local_cluster(kube: Kube) -> None:
    args = ["helm", "install", "inkwell", str(CHART), "-n", kube.namespace, "--wait", "--timeout", "120s"]
    for value in VALUES:
        args += ["--set", value]
    kube.run(*args)
    # The README's command, with the namespace it was installed in; a pod left Running would time out.
    result = kube.run("helm", "test", "inkwell", "-n", kube.namespace, "--timeout", "90s", check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "TEST SUITE:     inkwell-test" in result.stdout
    assert "Phase:          Succeeded" in result.stdout
