"""The connection budget through PgBouncer (database.pooler pgbouncer): the pods' pools are PgBouncer's
clients, sized from and checked against its max_client_conn rather than PostgreSQL's max_connections;
PgBouncer's own server pools are what PostgreSQL sees, beside the migration, which goes straight to it."""

from __future__ import annotations

import pytest

from tests.deploy.budget import (
    DEV,
    MIGRATION,
    PROD,
    config,
    database_values,
    env,
    failure,
    most_pods,
    pools,
    workers,
)
from tests.support.helm import kinds, one, render

pytestmark = pytest.mark.slow

POOLED = {"database.pooler": "pgbouncer"}
# docs/connections.md's production PgBouncer: two instances of default_pool_size 40, max_client_conn 1000.
PRODUCTION_PGBOUNCER = {
    **POOLED,
    "database.pgbouncer.maxClientConnections": "1000",
    "database.pgbouncer.serverPoolSize": "40",
    "database.pgbouncer.instances": "2",
}


def secret_key(container_env: dict[str, dict[str, object]], name: str) -> object:
    value_from = container_env[name]["valueFrom"]
    assert isinstance(value_from, dict)
    return value_from["secretKeyRef"]["key"]


@pytest.mark.parametrize(
    ("sets", "expected"),
    [
        # PgBouncer's default max_client_conn, 100, shared by 15 processes: 6 each.
        ({}, (3, 3)),
        # 150 / 15 = 10 each.
        ({"database.pgbouncer.maxClientConnections": "150"}, (5, 5)),
        # Plenty: the service's own 10 + 10.
        ({"database.pgbouncer.maxClientConnections": "1000"}, (10, 10)),
        # PostgreSQL's limit no longer shares anything out: straight to a max_connections of 40 each
        # process would get (40 - 10 - 1) / 15 = 1 connection.
        ({"database.maxConnections": "40"}, (3, 3)),
        # A replica doubles the pools through the same PgBouncer: 150 / 30 = 5 each.
        (
            {
                "database.pgbouncer.maxClientConnections": "150",
                "database.replica.enabled": "true",
                "redis.enabled": "true",
            },
            (3, 2),
        ),
        # Two workers a pod: 100 / 30 = 3.
        ({"workers": "2"}, (2, 1)),
    ],
    ids=["default", "150-clients", "1000-clients", "small-postgresql", "with-replica", "two-workers"],
)
def test_through_pgbouncer_unset_pools_are_derived_from_max_client_conn_at_the_hpa_maximum(
    sets: dict[str, str], expected: tuple[int, int]
) -> None:
    assert pools(render(PROD, **POOLED, **sets)) == expected


def test_the_configmap_names_the_pooler_and_reports_the_client_budget() -> None:
    data = config(render(PROD, **POOLED, **{"database.pgbouncer.maxClientConnections": "150"}))
    assert data["INKWELL_DATABASE_POOLER"] == "pgbouncer"
    assert data["INKWELL_DB_CONNECTION_BUDGET"] == "150"  # max_client_conn, not 100 - 10 - 1
    data = config(render(PROD))
    assert data["INKWELL_DATABASE_POOLER"] == "none"
    assert data["INKWELL_DB_CONNECTION_BUDGET"] == "89"


def test_production_through_the_documented_pgbouncer_fits_at_the_hpa_maximum() -> None:
    objects = render(PROD, **PRODUCTION_PGBOUNCER)
    pool, overflow = pools(objects)
    assert (pool, overflow) == (10, 10)
    clients = most_pods(objects) * workers(objects) * (pool + overflow)
    assert clients == 300 <= 1000  # 15 pods x 1 x (10 + 10)
    database = database_values(PROD)
    # PostgreSQL sees PgBouncer's server pools, the migration and the reserve: 2 x 40 + 1 + 10 = 91.
    assert 2 * 40 + MIGRATION + database["reservedConnections"] <= database["maxConnections"]


def test_pools_past_max_client_conn_fail_the_render_with_the_numbers_and_what_to_change() -> None:
    message = failure(PROD, **POOLED, **{"config.dbPoolSize": "10", "config.dbMaxOverflow": "10"})
    assert (
        "the release needs more PgBouncer client connections than database.pgbouncer.maxClientConnections "
        "allows: 15 pods (autoscaling.maxReplicas 12 + a rolling update's surge of 3) x 1 worker(s) x "
        "(config.dbPoolSize 10 + config.dbMaxOverflow 10) = 300 client connections, more than "
        "database.pgbouncer.maxClientConnections 100 (PgBouncer's max_client_conn)."
    ) in message
    assert "leave them unset to size them from the budget: 6 connections per pool here" in message
    assert "to at least 300" in message
    # With a replica its pools are PgBouncer's clients too.
    message = failure(
        PROD,
        **POOLED,
        **{"config.dbPoolSize": "3", "config.dbMaxOverflow": "2", "database.replica.enabled": "true"},
        **{"redis.enabled": "true"},
    )
    assert "x 2 (a pool to the primary and one to the replica) = 150 client connections, more than" in message


def test_more_pods_than_max_client_conn_fail_even_with_derived_pools() -> None:
    message = failure(PROD, **POOLED, **{"autoscaling.maxReplicas": "100"})
    assert "125 pods (autoscaling.maxReplicas 100 + a rolling update's surge of 25)" in message
    assert "= 125 client connections, more than database.pgbouncer.maxClientConnections 100" in message
    assert "Even one connection per pool does not fit" in message


def test_pgbouncers_server_pools_past_max_connections_fail_the_render() -> None:
    message = failure(
        PROD, **POOLED, **{"database.pgbouncer.instances": "3", "database.pgbouncer.serverPoolSize": "40"}
    )
    assert (
        "PgBouncer's server connections do not fit the database's: database.pgbouncer.instances 3 x "
        "(database.pgbouncer.serverPoolSize 40 + database.pgbouncer.reservePoolSize 0) = 120 server "
        "connections, + 1 for the migration (straight to PostgreSQL) + 10 reserved "
        "(database.reservedConnections) = 131, more than database.maxConnections 100."
    ) in message
    assert "to at most 29" in message  # (100 - 1 - 10) / 3
    # reserve_pool_size counts too: 2 x (40 + 5) + 11 = 101.
    message = failure(PROD, **PRODUCTION_PGBOUNCER, **{"database.pgbouncer.reservePoolSize": "5"})
    assert "= 101, more than database.maxConnections 100" in message


def test_through_pgbouncer_the_migration_goes_straight_to_postgresql() -> None:
    objects = render(PROD, **POOLED)
    assert secret_key(env(one(objects, "Job")), "INKWELL_DATABASE_URL") == "direct-database-url"
    assert secret_key(env(one(objects, "Deployment")), "INKWELL_DATABASE_URL") == "database-url"
    # Straight to PostgreSQL anyway, the Job reads the service's URL.
    assert secret_key(env(one(render(PROD), "Job")), "INKWELL_DATABASE_URL") == "database-url"
    # With the chart's own Secret the direct URL is required, and stored under its key.
    assert "secret.directDatabaseUrl is required with database.pooler pgbouncer" in failure(DEV, **POOLED)
    direct = "postgresql+asyncpg://inkwell:inkwell@postgres:5432/inkwell"
    objects = render(
        DEV,
        **POOLED,
        **{"secret.databaseUrl": "postgresql+asyncpg://inkwell:inkwell@pgbouncer:6432/inkwell"},
        **{"secret.directDatabaseUrl": direct},
    )
    assert "Secret" in kinds(objects)
    assert one(objects, "Secret")["stringData"]["direct-database-url"] == direct


def test_the_schema_refuses_an_unknown_pooler_or_a_mistyped_pgbouncer_value() -> None:
    assert "value must be one of 'none', 'pgbouncer'" in failure(DEV, **{"database.pooler": "pgpool"})
    assert "additional properties 'maxClientConn' not allowed" in failure(
        DEV, **{"database.pgbouncer.maxClientConn": "1000"}
    )
    failure(DEV, **{"database.pgbouncer.maxClientConnections": "0"})
    failure(DEV, **{"database.pgbouncer.instances": "0"})
    failure(DEV, **{"database.pgbouncer.reservePoolSize": "-1"})


def test_extra_env_cannot_switch_the_pooler_behind_the_budgets_back() -> None:
    message = failure(
        PROD, **{"extraEnv[0].name": "INKWELL_DATABASE_POOLER", "extraEnv[0].value": "pgbouncer"}
    )
    assert "extraEnv sets INKWELL_DATABASE_POOLER: use database.pooler instead" in message
