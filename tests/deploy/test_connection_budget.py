"""The database's connection budget as the chart renders it: every pod the release can run at once (the
HPA's maximum, or the replica count, plus a rolling update's surge) times its workers times its pool
and overflow, with the migration's connection and the reserved ones, fits in database.maxConnections;
pool sizes left unset are derived from it, and sizes that cannot fit fail the render with the numbers."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.deploy.budget import DEV, MIGRATION, PROD, database_values, failure, most_pods, pools, workers
from tests.support.helm import CI_VALUES, one, render

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.name)
def test_every_environment_fits_its_database_at_its_most_pods(values: Path) -> None:
    objects = render(values)
    pool, overflow = pools(objects)
    database = database_values(values)
    needed = most_pods(objects) * workers(objects) * (pool + overflow) + MIGRATION
    assert needed + database["reservedConnections"] <= database["maxConnections"]


def test_production_at_the_hpa_maximum_and_a_rollout_fits_postgresqls_default_100() -> None:
    objects = render(PROD)
    assert one(objects, "HorizontalPodAutoscaler")["spec"]["maxReplicas"] == 12
    assert most_pods(objects) == 15  # 12 + 25% surge
    assert workers(objects) == 1
    # 15 x 1 x (3 + 2) = 75, + 1 migration + 10 reserved = 86 <= 100; it was 12 x (10 + 10) = 240.
    assert pools(objects) == (3, 2)
    database = database_values(PROD)
    assert (database["maxConnections"], database["reservedConnections"]) == (100, 10)
    # Straight to PostgreSQL, without a replica: its pools are all the database sees of the pods.
    assert (database["pooler"], database["replica"]["enabled"]) == ("none", False)


@pytest.mark.parametrize(
    ("values", "sets", "expected"),
    [
        # 2 pods (1 + surge); 89 / 2 = 44 each, capped at the service's own 10 + 10.
        (DEV, {}, (10, 10)),
        # 30 processes share 89: 2 each.
        (PROD, {"workers": "2"}, (1, 1)),
        # 15 processes share 489: capped.
        (PROD, {"database.maxConnections": "500"}, (10, 10)),
        # 15 processes share 79: 5 each.
        (PROD, {"database.reservedConnections": "20"}, (3, 2)),
        # Without the HPA: 7 + 2 surging = 9 pods share 89, 9 each.
        (PROD, {"autoscaling.enabled": "false", "replicaCount": "7"}, (5, 4)),
        # One set, the other takes what is left of the share of 5.
        (PROD, {"config.dbPoolSize": "4"}, (4, 1)),
        (PROD, {"config.dbMaxOverflow": "0"}, (5, 0)),
        # Both set and fitting: kept as they are.
        (PROD, {"config.dbPoolSize": "2", "config.dbMaxOverflow": "2"}, (2, 2)),
    ],
    ids=[
        "dev",
        "two-workers",
        "larger-database",
        "more-reserved",
        "no-hpa",
        "pool-set",
        "overflow-set",
        "both-set",
    ],
)
def test_pool_sizes_left_unset_are_derived_from_the_budget(
    values: Path, sets: dict[str, str], expected: tuple[int, int]
) -> None:
    assert pools(render(values, **sets)) == expected


def test_explicit_pools_that_cannot_fit_fail_the_render_with_the_numbers_and_what_to_change() -> None:
    # Production before the budget: 10 + 10 per pod.
    message = failure(PROD, **{"config.dbPoolSize": "10", "config.dbMaxOverflow": "10"})
    assert (
        "the release needs more database connections than database.maxConnections allows: "
        "15 pods (autoscaling.maxReplicas 12 + a rolling update's surge of 3) x 1 worker(s) x "
        "(config.dbPoolSize 10 + config.dbMaxOverflow 10) = 300 connections, + 1 for the migration "
        "+ 10 reserved (database.reservedConnections) = 311, more than database.maxConnections 100."
    ) in message
    assert "leave them unset to size them from the budget: 5 connections per process here" in message
    assert "lower autoscaling.maxReplicas or workers" in message
    assert (
        "raise database.maxConnections (the database's max_connections, with its owners) to at least 311"
        in (message)
    )


def test_raising_the_hpa_maximum_past_the_budget_fails_even_with_derived_pools() -> None:
    # 100 + 25 pods cannot each have one connection out of 89.
    message = failure(PROD, **{"autoscaling.maxReplicas": "100"})
    assert "125 pods (autoscaling.maxReplicas 100 + a rolling update's surge of 25)" in message
    assert "Even one connection per process does not fit" in message
    # Without the HPA it is the replica count that counts.
    message = failure(DEV, **{"replicaCount": "80", "live.enabled": "false"})
    assert "100 pods (replicaCount 80 + a rolling update's surge of 20)" in message


def test_the_configmap_carries_the_budget_the_pools_were_sized_for() -> None:
    data = one(render(PROD), "ConfigMap", "-inkwell")["data"]
    assert data["INKWELL_DB_CONNECTION_BUDGET"] == "89"  # 100 - 10 reserved - 1 migration
    data = one(render(PROD, **{"database.maxConnections": "300"}), "ConfigMap", "-inkwell")["data"]
    assert data["INKWELL_DB_CONNECTION_BUDGET"] == "289"


def test_workers_reach_the_deployment_and_a_change_of_budget_rolls_the_pods() -> None:
    # Three processes need the memory for a password hash each beside them (test_hashing_budget.py).
    assert workers(render(DEV, workers="3", **{"resources.limits.memory": "1Gi"})) == 3
    before = one(render(PROD), "Deployment")["spec"]["template"]["metadata"]["annotations"]
    after = one(render(PROD, **{"database.maxConnections": "200"}), "Deployment")["spec"]["template"][
        "metadata"
    ]["annotations"]
    assert before["checksum/config"] != after["checksum/config"]


def test_the_schema_refuses_a_mistyped_budget() -> None:
    unknown = failure(DEV, **{"database.maxConnection": "200"})
    assert "additional properties 'maxConnection' not allowed" in unknown
    failure(DEV, **{"database.maxConnections": "many"})
    failure(DEV, **{"database.reservedConnections": "-1"})
    failure(DEV, workers="0")
