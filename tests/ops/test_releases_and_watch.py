"""`releases`, `status --watch` and the config file's per-context namespace and release, on releases the
chart really installed (one upgraded once, so its Helm revision is 2): what an SRE asks first ("what is
deployed here?"), how they keep an eye on a rollout, and the defaults they stop typing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

from tests.ops.conftest import BASE_VALUES, IMAGE, Ops, install
from tests.support.helm import CHART
from tests.support.kube import ROOT, Kube

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed(kube: Kube) -> Kube:
    install(kube, "blue", "replicaCount=2")
    install(kube, "green", "replicaCount=1")
    # A second Helm revision of green, as the runbooks' `helm upgrade --reuse-values --set` makes one.
    upgrade = ["helm", "upgrade", "green", str(CHART), "-n", kube.namespace, "--reuse-values"]
    kube.run(*upgrade, "--set", "image.tag=0.2.0", "--wait", "--timeout", "120s")
    return kube


def test_releases_lists_each_deployment_with_its_helm_revision_image_and_replicas(installed: Kube) -> None:
    code, data = Ops(installed, "unused").json("releases")
    assert code == 0
    found = {r["release"]: r for r in data["releases"]}
    assert sorted(found) == ["blue", "green"]
    blue, green = found["blue"], found["green"]
    assert blue["helm_release"] == "blue"
    assert blue["helm_revision"] == 1
    assert green["helm_revision"] == 2
    assert blue["images"] == {"inkwell": f"{IMAGE}:0.1.0"}
    assert green["images"] == {"inkwell": f"{IMAGE}:0.2.0"}
    assert green["app_version"] == "0.2.0"
    assert (blue["desired"], blue["ready"]) == (2, 2)
    assert (green["desired"], green["ready"]) == (1, 1)
    assert blue["chart"].startswith("inkwell-")
    assert blue["namespace"] == installed.namespace


def test_releases_as_a_table(installed: Kube) -> None:
    result = Ops(installed, "unused")("releases")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "RELEASE",
        "DEPLOYMENT",
        "CHART",
        "HELM",
        "REVISION",
        "IMAGE",
        "READY",
        "UP-TO-DATE",
        "AGE",
    ]
    green = next(line for line in lines if line.startswith("green "))
    assert green.split()[1:5] == ["green-inkwell", green.split()[2], "2", f"{IMAGE}:0.2.0"]
    assert green.split()[5] == "1/1"


def test_releases_in_an_empty_namespace_says_so(installed: Kube) -> None:
    empty = Kube(installed.kubeconfig, installed.bin_dir, namespace="kube-public")
    result = Ops(empty, "unused")("releases")
    assert result.exit_code == 0
    assert result.stdout.strip() == "No Inkwell releases found."


def test_releases_across_namespaces(installed: Kube) -> None:
    code, data = Ops(installed, "unused").json("releases", "-A")
    assert code == 0
    ours = [r["release"] for r in data["releases"] if r["namespace"] == installed.namespace]
    assert ours == ["blue", "green"]


def test_a_release_not_installed_by_helm_is_listed_as_such(installed: Kube) -> None:
    """The same manifests applied with kubectl: no Helm annotations, so no release or revision to show."""
    rendered = installed.run(
        "helm", "template", "red", str(CHART), "-n", installed.namespace,
        *(arg for value in BASE_VALUES for arg in ("--set", value)),
        "--show-only", "templates/deployment.yaml",
    ).stdout  # fmt: skip
    installed.kubectl("apply", "-f", "-", stdin=rendered)
    code, data = Ops(installed, "unused").json("releases")
    assert code == 0
    red = next(r for r in data["releases"] if r["release"] == "red")
    assert red["helm_release"] is None


def _watch(kube: Kube, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "ops", "--kubeconfig", kube.kubeconfig, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "INKWELL_OPS_CONFIG": os.devnull, **(env or {})},
    )


def _documents(proc: subprocess.Popen[str], wanted: int) -> list[dict[str, object]]:
    """Reads `-o json` refreshes from the process until `wanted` have arrived (each ends with a `}` line
    at the margin); a watchdog kills it if they never do, so the test fails instead of hanging."""
    watchdog = threading.Timer(120, proc.kill)
    watchdog.start()
    try:
        assert proc.stdout is not None
        documents, lines = [], []
        while len(documents) < wanted:
            line = proc.stdout.readline()
            if not line:
                raise AssertionError(f"the watch ended after {len(documents)} refresh(es)")
            lines.append(line)
            if line.rstrip("\n") == "}":
                documents.append(json.loads("".join(lines)))
                lines = []
        return documents
    finally:
        watchdog.cancel()


def _stderr_until(proc: subprocess.Popen[str], wanted: str) -> str:
    """The process's stderr up to the line holding `wanted` (a watchdog kills it if that never comes)."""
    watchdog = threading.Timer(120, proc.kill)
    watchdog.start()
    try:
        assert proc.stderr is not None
        seen = ""
        while wanted not in seen:
            line = proc.stderr.readline()
            if not line:
                raise AssertionError(f"stderr ended without {wanted!r}: {seen}")
            seen += line
        return seen
    finally:
        watchdog.cancel()


def test_status_watch_refreshes_until_ctrl_c_which_exits_0(installed: Kube) -> None:
    proc = _watch(
        installed,
        "-n",
        installed.namespace,
        "-r",
        "blue",
        "-o",
        "json",
        "status",
        "--watch",
        "--interval",
        "0.5",
    )
    try:
        first, second = _documents(proc, 2)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, stderr
    assert first["healthy"] is True
    assert second["state"]["deployment"]["name"] == "blue-inkwell"  # type: ignore[index]
    # Each refresh is a new reading, not the first one printed twice.
    assert first["state"]["observed_at"] != second["state"]["observed_at"]  # type: ignore[index]
    assert "Traceback" not in stderr
    assert stderr.count("(Ctrl-C to stop)") >= 2


def test_status_watch_keeps_going_when_the_release_goes_away_and_comes_back(installed: Kube) -> None:
    """An error in one refresh (here: no such release yet) is shown, and the next refresh is tried."""
    proc = _watch(
        installed,
        "-n",
        installed.namespace,
        "-r",
        "late",
        "-o",
        "json",
        "status",
        "--watch",
        "--interval",
        "0.5",
    )
    try:
        # Installed only once a refresh has failed for want of it, whatever the machine's speed.
        seen = _stderr_until(proc, "error: no Deployment labelled app.kubernetes.io/instance=late")
        install(installed, "late", "replicaCount=1")
        (document,) = _documents(proc, 1)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0
    assert document["state"]["release"] == "late"  # type: ignore[index]
    assert "Traceback" not in seen + stderr


def test_namespace_and_release_come_from_the_config_file_for_the_context(
    installed: Kube, tmp_path: Path
) -> None:
    context = yaml.safe_load(Path(installed.kubeconfig).read_text())["current-context"]
    file = tmp_path / "config.toml"
    file.write_text(f'[contexts."{context}"]\nnamespace = "{installed.namespace}"\nrelease = "green"\n')
    env = {"INKWELL_OPS_CONFIG": str(file)}

    def run(*args: str, extra: dict[str, str] | None = None) -> dict[str, object]:
        result = subprocess.run(
            [sys.executable, "-m", "ops", "--kubeconfig", installed.kubeconfig, "-o", "json", *args],
            capture_output=True, text=True, timeout=120, check=False, cwd=ROOT,
            env={k: v for k, v in os.environ.items() if not k.startswith("INKWELL_OPS_")} | env | (extra or {}),
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        return dict(json.loads(result.stdout))

    assert run("status")["state"]["release"] == "green"  # type: ignore[index]
    # The environment beats the file, and a flag beats both.
    assert run("status", extra={"INKWELL_OPS_RELEASE": "blue"})["state"]["release"] == "blue"  # type: ignore[index]
    assert run("-r", "green", "status", extra={"INKWELL_OPS_RELEASE": "blue"})["state"]["release"] == "green"  # type: ignore[index]
    assert run("-n", "kube-public", "releases")["releases"] == []


def test_status_asks_once_per_kind_of_object(installed: Kube) -> None:
    """Deployments, ReplicaSets, pods, PDBs, Services, Ingresses, EndpointSlices, HPAs, events: one request
    each, however many Services there are (was: the Deployment twice, and one LIST per Service)."""
    from ops import actions
    from ops.kube import Cluster, Connection

    connection = Connection(kubeconfig=installed.kubeconfig, namespace=installed.namespace)
    asked: list[str] = []
    call_api = connection.api.call_api

    def counting(method: str, url: str, *args: object, **kwargs: object) -> object:
        asked.append(f"{method} {url.partition('?')[0].rsplit('/', 1)[-1]}")
        return call_api(method, url, *args, **kwargs)

    connection.api.call_api = counting  # type: ignore[method-assign,assignment]
    try:
        found = actions.status(Cluster(connection), release="blue")
    finally:
        connection.close()
    assert found.state.deployment.name == "blue-inkwell"
    assert len(found.state.services) >= 1
    assert sorted(asked) == sorted(
        f"GET {kind}"
        for kind in (
            "deployments", "replicasets", "pods", "poddisruptionbudgets", "services", "ingresses",
            "endpointslices", "horizontalpodautoscalers", "events",
        )
    )  # fmt: skip


def test_status_loads_no_generated_api_class_or_model(installed: Kube) -> None:
    """The client's generated API classes and pydantic models take about a second to build (CoreV1Api alone
    builds some 375 models): ops.kube sends each request through the client's ApiClient and reads the JSON
    itself. A fresh interpreter, so what other tests imported does not count."""
    argv = ["--kubeconfig", installed.kubeconfig, "-n", installed.namespace, "-r", "blue", "-o", "json", "status"]  # fmt: skip
    script = (
        "import json, sys\n"
        "from typer.testing import CliRunner\n"
        "from ops.cli import app\n"
        f"result = CliRunner().invoke(app, {argv!r})\n"
        "modules = sorted(m for m in sys.modules if m.startswith('kubernetes'))\n"
        "print(json.dumps({'code': result.exit_code, 'output': result.output, 'modules': modules}))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True, cwd=ROOT
    )
    found = json.loads(run.stdout.splitlines()[-1])
    assert found["code"] == 0, found["output"]
    assert json.loads(found["output"])["state"]["deployment"]["name"] == "blue-inkwell"
    modules = found["modules"]
    assert "kubernetes.client.api_client" in modules  # the check would see the client's modules
    assert "kubernetes.client.api.core_v1_api" not in modules
    assert "kubernetes.client.models.v1_pod" not in modules
    generated = [m for m in modules if m.startswith(("kubernetes.client.api.", "kubernetes.client.models."))]
    assert generated == []
