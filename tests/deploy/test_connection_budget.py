"""The database's connection budget as the chart renders it: every pod the release can run at once (the
HPA's maximum, or the replica count, plus a rolling update's surge) times its workers times its pool
and overflow, with the migration's connection and the reserved ones, fits in database.maxConnections;
pool sizes left unset are derived from it, and sizes that cannot fit fail the render with the numbers."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.helm import CHART, CI_VALUES, helm, one, render

pytestmark = pytest.mark.slow

DEV = CHART / "ci" / "development-values.yaml"
PROD = CHART / "ci" / "production-values.yaml"
MIGRATION = 1  # Alembic on one connection (service/migrations/env.py)


def database_values(values: Path) -> dict[str, Any]:
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())["database"]
    return {**defaults, **(yaml.safe_load(values.read_text()).get("database") or {})}


def pools(objects: list[dict[str, Any]]) -> tuple[int, int]:
    data = one(objects, "ConfigMap", "-inkwell")["data"]
    return int(data["INKWELL_DB_POOL_SIZE"]), int(data["INKWELL_DB_MAX_OVERFLOW"])


def most_pods(objects: list[dict[str, Any]]) -> int:
    """The most pods that can exist at once, read from the objects Kubernetes acts on: the HPA's maximum
    (or the Deployment's replicas) and the rolling update's surge, rounded up as Kubernetes does."""
    deployment = one(objects, "Deployment")
    hpa = [o for o in objects if o["kind"] == "HorizontalPodAutoscaler"]
    replicas = hpa[0]["spec"]["maxReplicas"] if hpa else deployment["spec"]["replicas"]
    surge = deployment["spec"]["strategy"]["rollingUpdate"]["maxSurge"]
    assert surge.endswith("%"), surge
    return replicas + math.ceil(replicas * int(surge[:-1]) / 100)


def workers(objects: list[dict[str, Any]]) -> int:
    (container,) = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    args = container["args"]
    return int(args[args.index("--workers") + 1])


def failure(*value_files: Path, **sets: str) -> str:
    args = ["template", "ink", str(CHART)]
    for path in value_files:
        args += ["-f", str(path)]
    for key, value in sets.items():
        args += ["--set", f"{key}={value}"]
    result = helm(*args, check=False)
    assert result.returncode != 0, "rendered, but should not fit the database"
    return result.stderr


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
    assert database_values(PROD) == {"maxConnections": 100, "reservedConnections": 10}


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
    message = failure(DEV, **{"replicaCount": "80"})
    assert "100 pods (replicaCount 80 + a rolling update's surge of 20)" in message


def test_the_configmap_carries_the_budget_the_pools_were_sized_for() -> None:
    data = one(render(PROD), "ConfigMap", "-inkwell")["data"]
    assert data["INKWELL_DB_CONNECTION_BUDGET"] == "89"  # 100 - 10 reserved - 1 migration
    data = one(render(PROD, **{"database.maxConnections": "300"}), "ConfigMap", "-inkwell")["data"]
    assert data["INKWELL_DB_CONNECTION_BUDGET"] == "289"


def test_workers_reach_the_deployment_and_a_change_of_budget_rolls_the_pods() -> None:
    assert workers(render(DEV, workers="3")) == 3
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
