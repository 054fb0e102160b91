"""The Role in k8s/rbac/inkwell-ops.yaml is enough for every command and no more: the CLI runs as the
ServiceAccount (impersonated, as `kubectl --as` does) in a namespace where only that Role is bound."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from tests.ops.conftest import IMAGE, Ops, install
from tests.support.kube import ROOT, Kube

pytestmark = pytest.mark.slow

RBAC = ROOT / "k8s" / "rbac" / "inkwell-ops.yaml"
ALL_NAMESPACES = ROOT / "k8s" / "rbac" / "inkwell-ops-all-namespaces.yaml"


def in_namespace(namespace: str) -> str:
    """The manifests, moved from the namespace they name (inkwell) to the test's."""
    docs: list[dict[str, Any]] = [doc for doc in yaml.safe_load_all(RBAC.read_text()) if doc]
    for doc in docs:
        doc["metadata"]["namespace"] = namespace
        for subject in doc.get("subjects", []):
            subject["namespace"] = namespace
    return yaml.safe_dump_all(docs)


@pytest.fixture(scope="module")
def account(kube: Kube) -> str:
    kube.kubectl("apply", "-f", "-", stdin=in_namespace(kube.namespace))
    return f"system:serviceaccount:{kube.namespace}:inkwell-ops"


@pytest.fixture(scope="module")
def plain(kube: Kube, account: str) -> Ops:
    install(kube, "plain", "replicaCount=2", "progressDeadlineSeconds=4")
    return Ops(kube, "plain", impersonate=account)


@pytest.fixture(scope="module")
def autoscaled(kube: Kube, account: str) -> Ops:
    install(
        kube, "auto", "autoscaling.enabled=true", "autoscaling.minReplicas=1", "autoscaling.maxReplicas=3"
    )
    return Ops(kube, "auto", impersonate=account)


def _ok(ops: Ops, *args: str, codes: tuple[int, ...] = (0,)) -> None:
    result = ops(*args)
    assert result.exit_code in codes, f"{args}: {result.exit_code}\n{result.stdout}\n{result.stderr}"
    assert "forbidden" not in (result.stdout + result.stderr).lower()


def test_every_command_works_as_the_service_account(plain: Ops) -> None:
    _ok(plain, "status")
    _ok(plain, "diagnose")
    _ok(plain, "history")
    _ok(plain, "rollout", f"{IMAGE}:0.2.0", "--dry-run")
    _ok(plain, "rollout", f"{IMAGE}:0.2.0")
    # A failed rollout and its automatic rollback: the whole path, as the account.
    _ok(plain, "rollout", f"{IMAGE}:never-ready", "--label", "inkwell.dev/simulate=never-ready", codes=(1,))
    # The last good revision (1), which records on the ReplicaSets that 3 failed and 4 was left.
    _ok(plain, "rollback")
    _ok(plain, "rollback", "--to-revision", "4", "--dry-run")
    _ok(plain, "rollback", "--to-revision", "4")
    _ok(plain, "restart", "--dry-run")
    _ok(plain, "restart")
    _ok(plain, "scale", "3", "--dry-run")
    _ok(plain, "scale", "3")
    _ok(plain, "migrate", "--label", "inkwell.dev/simulate=exit-0")
    _ok(plain, "migrate", "--label", "inkwell.dev/simulate=exit-1", codes=(1,))
    assert json.loads(plain.kube.kubectl("get", "jobs", "-o", "json").stdout)["items"] == []
    # The runbooks' reads (tests/ops/test_troubleshoot.py): KWOK keeps no logs, answers no probe, and
    # has no metrics.k8s.io, so these end in 1, but never in a refusal.
    _ok(plain, "events")
    _ok(plain, "logs", "--previous", "--since", "1h", codes=(1,))
    _ok(plain, "readyz", codes=(1,))
    _ok(plain, "top", codes=(1,))


def test_moving_the_hpa_bounds_works_as_the_service_account(autoscaled: Ops) -> None:
    _ok(autoscaled, "status", codes=(0, 3))  # the test cluster has no metrics-server: degraded, not denied
    _ok(autoscaled, "scale", "2", "--adjust-hpa", "--dry-run")
    _ok(autoscaled, "scale", "2", "--adjust-hpa")


def _can(kube: Kube, account: str, verb: str, resource: str) -> str:
    # `pods/exec` is asked as pods with --subresource: kubectl reads a slash as a resource name.
    kind, _, subresource = resource.partition("/")
    extra = [f"--subresource={subresource}"] if subresource else []
    result = kube.kubectl("auth", "can-i", verb, kind, *extra, f"--as={account}", check=False)
    return result.stdout.strip()


@pytest.mark.parametrize(
    ("verb", "resource"),
    [
        ("delete", "deployments.apps"),
        ("create", "deployments.apps"),
        ("get", "secrets"),
        ("list", "secrets"),
        ("delete", "pods"),
        ("create", "pods/exec"),
        ("create", "pods/portforward"),
        ("create", "pods/proxy"),
        ("watch", "pods"),
        ("get", "configmaps"),
    ],
)
def test_the_service_account_may_do_nothing_more(kube: Kube, account: str, verb: str, resource: str) -> None:
    assert _can(kube, account, verb, resource) == "no"


def test_outside_its_namespace_the_cli_is_refused_with_exit_1(plain: Ops, account: str) -> None:
    elsewhere = Ops(Kube(plain.kube.kubeconfig, plain.kube.bin_dir, "default"), "plain", impersonate=account)
    result = elsewhere("status")
    assert result.exit_code == 1
    assert "forbidden" in result.stderr.lower()


def test_releases_in_all_namespaces_is_refused_with_the_way_to_allow_it(kube: Kube, plain: Ops) -> None:
    """The Role is namespaced, so `releases -A` is refused with the optional ClusterRole's file named;
    with that file applied (bound to the test's account) it lists the release."""
    refused = plain("releases", "-A")
    assert refused.exit_code == 1
    assert "kubectl apply -f k8s/rbac/inkwell-ops-all-namespaces.yaml" in refused.stderr, refused.stderr

    docs = [doc for doc in yaml.safe_load_all(ALL_NAMESPACES.read_text()) if doc]
    suffix = f"-{kube.namespace}"  # cluster-wide objects: one pair per test namespace, removed after
    for doc in docs:
        doc["metadata"]["name"] += suffix
        if doc["kind"] == "ClusterRoleBinding":
            doc["roleRef"]["name"] += suffix
            doc["subjects"][0]["namespace"] = kube.namespace
    manifest = yaml.safe_dump_all(docs)
    kube.kubectl("apply", "-f", "-", stdin=manifest)
    try:
        code, listed = plain.json("releases", "-A")
        assert code == 0, listed
        found = {(r["namespace"], r["release"]) for r in listed["releases"]}
        assert (kube.namespace, "plain") in found
    finally:
        kube.kubectl("delete", "-f", "-", stdin=manifest)
