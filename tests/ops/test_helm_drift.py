"""inkwell-ops and Helm agree, with the real helm on the real cluster: Helm stays the source of truth, a
change inkwell-ops makes (an image, a replica count, an HPA's bounds) is reported as drift with the
`helm upgrade` that records it, and the runbooks' `helm upgrade --reuse-values --set ...` refuses to put
Helm's old value back instead of doing it silently; with the printed values added it goes through and
`helm history` shows the change."""

from __future__ import annotations

import json
import re
import shlex

import pytest

from tests.ops.conftest import IMAGE, Ops, install
from tests.support.helm import CHART
from tests.support.kube import Kube

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def blog(kube: Kube) -> Ops:
    install(kube, "blog", "replicaCount=2")
    return Ops(kube, "blog")


@pytest.fixture(scope="module")
def wiki(kube: Kube) -> Ops:
    install(
        kube, "wiki", "autoscaling.enabled=true", "autoscaling.minReplicas=2", "autoscaling.maxReplicas=4"
    )
    return Ops(kube, "wiki")


def _upgrade(ops: Ops, *sets: str) -> tuple[int, str]:
    """The runbooks' upgrade: the release's values as they are, plus these."""
    args = ["helm", "upgrade", ops.release, str(CHART), "-n", ops.kube.namespace, "--reuse-values"]
    for value in sets:
        args += ["--set", value]
    done = ops.kube.run(*args, "--wait", "--timeout", "120s", check=False)
    return done.returncode, done.stdout + done.stderr


def _printed_command(stderr: str) -> list[str]:
    """The `helm upgrade ...` inkwell-ops said to run, with the chart path of this checkout."""
    line = next(line for line in stderr.splitlines() if "To keep this: helm upgrade" in line)
    words = shlex.split(line.split("To keep this: ", 1)[1])
    return [str(CHART) if word == "charts/inkwell" else word for word in words]


def _helm_revisions(ops: Ops) -> int:
    history = ops.kube.run("helm", "history", ops.release, "-n", ops.kube.namespace, "-o", "json").stdout
    return len(json.loads(history))


def _image(ops: Ops) -> str:
    (container,) = ops.deployment()["spec"]["template"]["spec"]["containers"]
    return str(container["image"])


def test_a_rollout_is_drift_with_the_upgrade_that_records_it(blog: Ops) -> None:
    result = blog("rollout", f"{IMAGE}:0.2.0")
    assert result.exit_code == 0, result.stderr
    assert f"helm drift: deployment/blog-inkwell image {IMAGE}:0.2.0 (Helm's: {IMAGE}:0.1.0)" in result.stderr
    command = (
        f"helm upgrade blog charts/inkwell -n {blog.kube.namespace} --reuse-values --set image.tag=0.2.0"
    )
    assert f"To keep this: {command}" in result.stderr
    code, data = blog.json("diagnose")
    assert code == 3
    (finding,) = [p for p in data["problems"] if p["problem"] == "HelmDrift"]
    assert finding["object"] == "deployment/blog-inkwell"
    assert command in finding["advice"]


def test_the_runbooks_upgrade_refuses_to_put_helms_image_back(blog: Ops) -> None:
    code, output = _upgrade(blog, "config.logLevel=DEBUG")
    assert code != 0
    assert "release blog was changed outside Helm (inkwell-ops)" in output
    assert f"image {IMAGE}:0.2.0 (Helm's: {IMAGE}:0.1.0)" in output
    assert "add --set image.tag=0.2.0 to this helm upgrade" in output
    assert _image(blog) == f"{IMAGE}:0.2.0"
    assert _helm_revisions(blog) == 1


def test_the_printed_upgrade_records_the_change_in_helm(blog: Ops) -> None:
    stderr = blog("rollout", f"{IMAGE}:0.2.0").stderr  # already there: says the same again
    done = blog.kube.run(*_printed_command(stderr), "--set", "config.logLevel=DEBUG", "--wait", check=False)
    assert done.returncode == 0, done.stderr
    assert _helm_revisions(blog) == 2
    values = json.loads(
        blog.kube.run("helm", "get", "values", "blog", "-n", blog.kube.namespace, "-o", "json").stdout
    )
    assert values["image"]["tag"] == "0.2.0"
    assert _image(blog) == f"{IMAGE}:0.2.0"
    code, data = blog.json("diagnose")
    assert "HelmDrift" not in {p["problem"] for p in data["problems"]}, data
    assert code == 0


def test_an_upgrade_that_sets_a_new_image_is_a_decision_and_goes_through(blog: Ops) -> None:
    assert blog("scale", "3").exit_code == 0
    code, output = _upgrade(blog, "config.logLevel=INFO")
    assert code != 0
    assert "add --set replicaCount=3 to this helm upgrade" in output
    assert blog.deployment()["spec"]["replicas"] == 3
    # Values of its own (not Helm's old ones) are the operator's decision.
    code, output = _upgrade(blog, "replicaCount=4", "image.tag=0.3.0")
    assert code == 0, output
    assert (_image(blog), blog.deployment()["spec"]["replicas"]) == (f"{IMAGE}:0.3.0", 4)


def test_an_hpa_change_is_drift_and_the_upgrade_keeps_it_only_when_told(wiki: Ops) -> None:
    result = wiki("scale", "3", "--adjust-hpa")
    assert result.exit_code == 0, result.stderr
    assert "horizontalpodautoscaler/wiki-inkwell minReplicas 3 (Helm's: 2)" in result.stderr
    code, output = _upgrade(wiki, "config.logLevel=DEBUG")
    assert code != 0
    assert re.search(r"add --set autoscaling\.minReplicas=3 to this helm upgrade", output), output
    hpa = json.loads(wiki.kube.kubectl("get", "hpa", "wiki-inkwell", "-o", "json").stdout)["spec"]
    assert hpa["minReplicas"] == 3
    done = wiki.kube.run(*_printed_command(result.stderr), "--wait", check=False)
    assert done.returncode == 0, done.stderr
    annotations = wiki.kube.get("hpa", "wiki-inkwell")["metadata"]["annotations"]
    assert annotations["inkwell.dev/helm-min-replicas"] == "3"
