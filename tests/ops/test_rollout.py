"""Rollouts on a real Deployment: a dry run changes nothing, a good image rolls out, an image whose pods never
become ready is rolled back by itself (or left for `rollback` with --no-rollback), revisions are listed and
restored by number, and a restart replaces every pod."""

from __future__ import annotations

import pytest

from tests.ops.conftest import IMAGE, Ops, eventually, install
from tests.support.kube import Kube

pytestmark = pytest.mark.slow

NEVER_READY = ("--label", "inkwell.dev/simulate=never-ready")


@pytest.fixture(scope="module")
def web(kube: Kube) -> Ops:
    # A short deadline, so a rollout that cannot finish fails in seconds.
    install(kube, "web", "replicaCount=2", "progressDeadlineSeconds=4")
    return Ops(kube, "web")


def _image(ops: Ops) -> str:
    (container,) = ops.deployment()["spec"]["template"]["spec"]["containers"]
    return str(container["image"])


def _ready_images(ops: Ops) -> set[str]:
    return {
        c["image"]
        for p in ops.pods()
        if any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))
        for c in p["spec"]["containers"]
    }


def _settled(ops: Ops, image: str) -> bool:
    pods = ops.pods()
    return len(pods) == 2 and all(p["spec"]["containers"][0]["image"] == image for p in pods)


def test_a_dry_run_shows_the_diff_and_changes_nothing(web: Ops) -> None:
    before = web.deployment()
    result = web("rollout", f"{IMAGE}:0.2.0", "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert f"-    image: {IMAGE}:0.1.0" in result.stdout
    assert f"+    image: {IMAGE}:0.2.0" in result.stdout
    assert "+    app.kubernetes.io/version: 0.2.0" in result.stdout
    assert "server-side dry run" in result.stderr
    after = web.deployment()
    assert after["metadata"]["generation"] == before["metadata"]["generation"]
    assert _image(web) == f"{IMAGE}:0.1.0"


def test_a_dry_run_is_validated_by_the_api_server(web: Ops) -> None:
    result = web(
        "rollout", f"{IMAGE}:0.2.0", "--dry-run", "--label", "inkwell.dev/simulate=not a label value"
    )
    assert result.exit_code == 1
    assert "patching Deployment web-inkwell" in result.stderr
    assert "HTTP 422" in result.stderr
    assert "not a label value" in result.stderr
    assert _image(web) == f"{IMAGE}:0.1.0"


def test_a_rollout_of_a_good_image_succeeds(web: Ops) -> None:
    code, data = web.json("rollout", f"{IMAGE}:0.2.0")
    assert code == 0
    assert data["ok"] is True
    assert data["reason"] == "Complete"
    assert data["revision"] == 2
    assert data["rolled_back_to"] is None
    assert _image(web) == f"{IMAGE}:0.2.0"
    assert web.deployment()["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/version"] == "0.2.0"
    assert _ready_images(web) == {f"{IMAGE}:0.2.0"}


def test_a_rollout_whose_pods_never_become_ready_is_rolled_back(web: Ops) -> None:
    result = web("rollout", f"{IMAGE}:never-ready", *NEVER_READY)
    assert result.exit_code == 1
    assert "ProgressDeadlineExceeded" in result.stderr
    assert "rolling back to revision 2" in result.stderr
    assert "rolled back to revision 2 (now revision 4)" in result.stdout
    assert _image(web) == f"{IMAGE}:0.2.0"
    assert "inkwell.dev/simulate" not in web.deployment()["spec"]["template"]["metadata"]["labels"]
    # maxUnavailable 0: the good pods kept serving throughout, and the bad one is gone.
    assert _ready_images(web) == {f"{IMAGE}:0.2.0"}
    eventually(lambda: _settled(web, f"{IMAGE}:0.2.0"), what="the never-ready pod gone")


def test_with_no_rollback_a_failed_rollout_stays_for_rollback_to_undo(web: Ops) -> None:
    code, data = web.json("rollout", f"{IMAGE}:never-ready", *NEVER_READY, "--no-rollback")
    assert code == 1
    assert (data["ok"], data["reason"], data["rolled_back_to"]) == (False, "ProgressDeadlineExceeded", None)
    assert _image(web) == f"{IMAGE}:never-ready"
    code, diagnosis = web.json("diagnose")
    assert code == 3
    assert "StuckRollout" in {p["problem"] for p in diagnosis["problems"]}

    undo = web("rollback")
    assert undo.exit_code == 0, undo.stderr
    assert _image(web) == f"{IMAGE}:0.2.0"
    eventually(lambda: _settled(web, f"{IMAGE}:0.2.0"), what="the never-ready pod gone")
    # Healthy, but not what Helm rendered (0.1.0): that is drift for the operator to record or undo.
    code, status = web.json("status")
    assert (code, [p["problem"] for p in status["problems"]]) == (3, ["HelmDrift"])


def test_history_lists_each_revision_with_its_image(web: Ops) -> None:
    code, data = web.json("history")
    assert code == 0
    assert data["deployment"] == "web-inkwell"
    revisions = {r["revision"]: r for r in data["revisions"]}
    # 1: 0.1.0; 2: 0.2.0, re-used by the automatic rollback (4) and by `rollback` (6); 5: never-ready again.
    assert {n: r["images"]["inkwell"] for n, r in revisions.items()} == {
        1: f"{IMAGE}:0.1.0",
        5: f"{IMAGE}:never-ready",
        6: f"{IMAGE}:0.2.0",
    }
    assert [n for n, r in revisions.items() if r["current"]] == [6]
    assert revisions[6]["ready"] == 2
    table = web("history")
    assert table.exit_code == 0
    assert "current" in next(line for line in table.stdout.splitlines() if line.startswith("6 "))


def test_a_rollback_dry_run_shows_the_template_it_would_restore_and_changes_nothing(web: Ops) -> None:
    generation = web.deployment()["metadata"]["generation"]
    result = web("rollback", "--to-revision", "1", "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert f"-    image: {IMAGE}:0.2.0" in result.stdout
    assert f"+    image: {IMAGE}:0.1.0" in result.stdout
    assert "pod-template-hash" not in result.stdout
    assert web.deployment()["metadata"]["generation"] == generation
    assert _image(web) == f"{IMAGE}:0.2.0"


def test_rollback_to_a_chosen_revision(web: Ops) -> None:
    code, data = web.json("rollback", "--to-revision", "1")
    assert code == 0
    assert (data["restored"], data["revision"], data["ok"]) == (1, 7, True)
    assert _image(web) == f"{IMAGE}:0.1.0"
    assert _ready_images(web) == {f"{IMAGE}:0.1.0"}
    assert web.deployment()["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "7"


def test_rollback_to_a_revision_that_does_not_exist_fails_and_changes_nothing(web: Ops) -> None:
    generation = web.deployment()["metadata"]["generation"]
    result = web("rollback", "--to-revision", "42")
    assert result.exit_code == 1
    assert "has no revision 42" in result.stderr
    assert web.deployment()["metadata"]["generation"] == generation


def test_a_restart_dry_run_shows_the_annotation_and_replaces_nothing(web: Ops) -> None:
    before = {p["metadata"]["name"] for p in web.pods()}
    generation = web.deployment()["metadata"]["generation"]
    code, data = web.json("restart", "--dry-run")
    assert code == 0
    assert data["dry_run"] is True
    assert "+    kubectl.kubernetes.io/restartedAt: '20" in data["diff"]
    assert web.deployment()["metadata"]["generation"] == generation
    assert {p["metadata"]["name"] for p in web.pods()} == before


def test_restart_replaces_every_pod(web: Ops) -> None:
    before = {p["metadata"]["name"] for p in web.pods()}
    code, data = web.json("restart")
    assert code == 0
    assert data["ok"] is True
    assert (
        "kubectl.kubernetes.io/restartedAt" in web.deployment()["spec"]["template"]["metadata"]["annotations"]
    )
    after = eventually(lambda: {p["metadata"]["name"] for p in web.pods()} if len(web.pods()) == 2 else None)
    assert not before & after
    assert _image(web) == f"{IMAGE}:0.1.0"
