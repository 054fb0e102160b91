"""One cluster for the whole session (private KWOK cluster or INKWELL_E2E_KUBECONFIG), and a fresh
namespace per test module, deleted afterwards, so the tests can run against a shared cluster too."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.support.kube import Kube, cluster


@pytest.fixture(scope="session")
def kube_cluster() -> Iterator[Kube]:
    with cluster() as kube:
        yield kube


@pytest.fixture(scope="module")
def kube(kube_cluster: Kube) -> Iterator[Kube]:
    namespace = f"inkwell-e2e-{uuid.uuid4().hex[:8]}"
    kube_cluster.run("kubectl", "create", "namespace", namespace)
    try:
        yield Kube(kubeconfig=kube_cluster.kubeconfig, bin_dir=kube_cluster.bin_dir, namespace=namespace)
    finally:
        kube_cluster.run("kubectl", "delete", "namespace", namespace, "--wait=false", check=False)
