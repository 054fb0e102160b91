"""`rollback` after a rollout that rolled itself back returns to the last good revision, not to the failed
one just before the current; `history` shows which revisions failed or were rolled back and when each
became current, from records kept on the ReplicaSets, so a later process (or another operator) sees them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.ops.conftest import IMAGE, Ops, install
from tests.support.kube import Kube

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def web(kube: Kube) -> Ops:
    # A long deadline, as in production: the failed rollout below ends by its --timeout.
    install(kube, "rev", "replicaCount=2", "progressDeadlineSeconds=600")
    return Ops(kube, "rev")


def _revisions(ops: Ops) -> dict[int, dict[str, Any]]:
    code, data = ops.json("history")
    assert code == 0
    return {r["revision"]: r for r in data["revisions"]}


def _image(ops: Ops) -> str:
    (container,) = ops.deployment()["spec"]["template"]["spec"]["containers"]
    return str(container["image"])


def test_rollback_after_an_automatic_rollback_returns_to_the_last_good_revision(web: Ops) -> None:
    assert web("rollout", f"{IMAGE}:0.2.0").exit_code == 0  # revision 2
    code, failed = web.json(
        "rollout", f"{IMAGE}:never-ready", "--label", "inkwell.dev/simulate=never-ready", "--timeout", "5"
    )
    assert code == 1
    # 3 failed and was rolled back: 2's template came back as 4.
    assert (failed["reason"], failed["rolled_back_to"], failed["revision"]) == ("Timeout", 2, 4)

    code, data = web.json("rollback", "--timeout", "60")
    assert code == 0, data
    assert (data["restored"], data["revision"], data["ok"]) == (1, 5, True)
    assert _image(web) == f"{IMAGE}:0.1.0"
    progressing = {c["type"]: c for c in web.deployment()["status"]["conditions"]}["Progressing"]
    assert progressing["reason"] != "ProgressDeadlineExceeded"


def test_history_marks_the_failed_and_rolled_back_revisions_and_when_each_became_current(web: Ops) -> None:
    started = datetime.now(UTC)
    revisions = _revisions(web)
    assert sorted(revisions) == [3, 4, 5]
    failed, left, current = revisions[3], revisions[4], revisions[5]
    assert (failed["outcome"], failed["outcome_reason"]) == ("failed", "Timeout")
    assert failed["rolled_back_at"] is not None
    assert (left["outcome"], left["rolled_back_at"] is not None) == ("complete", True)
    assert (current["outcome"], current["rolled_back_at"], current["current"]) == ("complete", None, True)
    since = {n: datetime.fromisoformat(r["current_since"]) for n, r in revisions.items()}
    assert since[3] <= since[4] <= since[5] <= started
    table = web("history").stdout.splitlines()
    assert "failed (Timeout), rolled back" in next(line for line in table if line.startswith("3 "))
    assert "complete" in next(line for line in table if line.startswith("5 "))
    # Kept on the ReplicaSets themselves, where any later process reads them.
    replicaset = json.loads(web.kube.kubectl("get", "replicaset", failed["replicaset"], "-o", "json").stdout)
    assert replicaset["metadata"]["annotations"]["inkwell.dev/outcome"] == "failed"


def test_rollback_with_no_good_revision_left_refuses_and_changes_nothing(web: Ops) -> None:
    generation = web.deployment()["metadata"]["generation"]
    result = web("rollback")
    assert result.exit_code == 1
    assert "has no good revision before 5 (skipped, failed or rolled back: 3, 4)" in result.stderr
    assert "--to-revision" in result.stderr
    assert web.deployment()["metadata"]["generation"] == generation
