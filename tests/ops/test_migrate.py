"""`migrate` runs `inkwell migrate` as a Job cut from the Deployment's pod template, reports success or a clear
failure, and deletes the Job and its pod afterwards."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.ops.conftest import IMAGE, Ops, install
from tests.support.kube import Kube

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def db(kube: Kube) -> Ops:
    install(kube, "db", "replicaCount=1", "image.tag=0.3.0")
    return Ops(kube, "db")


def _jobs(ops: Ops) -> list[dict[str, Any]]:
    return list(json.loads(ops.kube.kubectl("get", "jobs", "-o", "json").stdout)["items"])


def _job_pods(ops: Ops) -> list[dict[str, Any]]:
    return list(
        json.loads(
            ops.kube.kubectl(
                "get", "pods", "-l", "app.kubernetes.io/component=migration", "-o", "json"
            ).stdout
        )["items"]
    )


def test_the_job_is_the_deployments_pod_template_running_inkwell_migrate(db: Ops) -> None:
    result = db(
        "migrate",
        "--keep",
        "--label",
        "inkwell.dev/simulate=exit-0",
        "--label",
        "sidecar.istio.io/inject=false",
    )
    assert result.exit_code == 0, result.stderr
    (job,) = _jobs(db)
    try:
        assert job["metadata"]["name"].startswith("db-inkwell-migrate-")
        spec = job["spec"]["template"]["spec"]
        (container,) = spec["containers"]
        (app,) = db.deployment()["spec"]["template"]["spec"]["containers"]
        assert container["command"] == ["inkwell", "migrate"]
        assert container["image"] == app["image"] == f"{IMAGE}:0.3.0"
        assert container["env"] == app["env"]
        assert container["envFrom"] == app["envFrom"]
        assert container["securityContext"] == app["securityContext"]
        assert "readinessProbe" not in container
        assert "args" not in container
        assert spec["restartPolicy"] == "Never"
        assert job["spec"]["backoffLimit"] == 0
        labels = job["spec"]["template"]["metadata"]["labels"]
        assert labels["sidecar.istio.io/inject"] == "false"
        assert labels["app.kubernetes.io/instance"] == "db"
        # Not behind the Service, not counted by the PodDisruptionBudget.
        assert "app.kubernetes.io/name" not in labels
    finally:
        db.kube.kubectl("delete", "job", job["metadata"]["name"], "--cascade=foreground", "--wait=true")


def test_a_migration_that_completes_succeeds_and_cleans_up(db: Ops) -> None:
    result = db("migrate", "--label", "inkwell.dev/simulate=exit-0")
    assert result.exit_code == 0, result.stderr
    assert "succeeded (job and pods deleted)" in result.stdout
    assert "log of db-inkwell-migrate-" in result.stdout
    assert _jobs(db) == []
    assert _job_pods(db) == []


def test_a_migration_that_fails_says_why_and_cleans_up(db: Ops) -> None:
    code, data = db.json("migrate", "--label", "inkwell.dev/simulate=exit-1")
    assert code == 1
    assert data["succeeded"] is False
    assert data["reason"] == "BackoffLimitExceeded"
    (pod,) = data["pods"]
    assert data["message"] == f"pod {pod['name']} exited with code 1 (Error)"
    assert data["cleaned_up"] is True
    assert _jobs(db) == []
    assert _job_pods(db) == []
