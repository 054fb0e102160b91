"""A read replica in the chart (database.replica): its URL reaches the service from the Secret as the
database's does, its lag limit from the values; each process's second pool, the primary's size, fits the
replica's max_connections or the render fails; and outside development it is refused without Redis."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.deploy.budget import DEV, NO_REDIS, PROD, config, env, failure, pools
from tests.support.helm import CHART, kinds, one, render

pytestmark = pytest.mark.slow

STAGING = CHART / "ci" / "staging-values.yaml"
REPLICA = {"database.replica.enabled": "true", "redis.enabled": "true"}
READ_URL = "postgresql+asyncpg://inkwell:inkwell@postgres-replica:5432/inkwell"


def test_the_replica_url_reaches_the_service_from_the_existing_secret() -> None:
    objects = render(PROD, **REPLICA)
    service = env(one(objects, "Deployment"))
    assert service["INKWELL_DATABASE_READ_URL"]["valueFrom"] == {
        "secretKeyRef": {"name": "inkwell-production", "key": "database-read-url"}
    }
    assert service["INKWELL_REDIS_URL"]["valueFrom"] == {
        "secretKeyRef": {"name": "inkwell-production", "key": "redis-url"}
    }
    # The migration reads neither.
    assert {"INKWELL_DATABASE_READ_URL", "INKWELL_REDIS_URL"}.isdisjoint(env(one(objects, "Job")))
    # Another key of the existing Secret.
    objects = render(PROD, **REPLICA, **{"secret.keys.databaseReadUrl": "replica"})
    assert env(one(objects, "Deployment"))["INKWELL_DATABASE_READ_URL"]["valueFrom"]["secretKeyRef"][
        "key"
    ] == ("replica")
    # No replica, no read URL: every read on the primary.
    assert "INKWELL_DATABASE_READ_URL" not in env(one(render(PROD), "Deployment"))


def test_the_replica_url_reaches_the_service_from_the_charts_own_secret() -> None:
    objects = render(DEV, **{"database.replica.enabled": "true", "secret.databaseReadUrl": READ_URL})
    assert "Secret" in kinds(objects)
    secret = one(objects, "Secret")
    assert secret["stringData"]["database-read-url"] == READ_URL
    assert env(one(objects, "Deployment"))["INKWELL_DATABASE_READ_URL"]["valueFrom"] == {
        "secretKeyRef": {"name": secret["metadata"]["name"], "key": "database-read-url"}
    }
    message = failure(DEV, **{"database.replica.enabled": "true"})
    assert "secret.databaseReadUrl is required with database.replica.enabled" in message


def test_the_lag_limit_and_check_interval_reach_the_configmap_only_with_a_replica(tmp_path: Path) -> None:
    data = config(render(PROD, **REPLICA))
    assert (data["INKWELL_DB_READ_MAX_LAG_SECONDS"], data["INKWELL_DB_REPLICA_CHECK_SECONDS"]) == ("5", "0.5")
    # A values file: --set would pass 2.5 as a string, which the schema refuses.
    lag = tmp_path / "lag.yaml"
    lag.write_text("database: {replica: {maxLagSeconds: 2.5, checkSeconds: 0.25}}\n")
    data = config(render(PROD, lag, **REPLICA))
    assert (data["INKWELL_DB_READ_MAX_LAG_SECONDS"], data["INKWELL_DB_REPLICA_CHECK_SECONDS"]) == (
        "2.5",
        "0.25",
    )
    assert "INKWELL_DB_READ_MAX_LAG_SECONDS" not in config(render(PROD))
    failure(PROD, **REPLICA, **{"database.replica.maxLagSeconds": "0"})


def test_production_with_a_replica_of_the_primarys_size_fits_at_the_hpa_maximum() -> None:
    # Its max_connections defaults to the primary's 100: 15 x (3 + 2) + 10 reserved = 85 there too.
    assert pools(render(PROD, **REPLICA)) == (3, 2)


def test_unset_pools_shrink_to_fit_a_smaller_replica() -> None:
    # (50 - 10 reserved) / 15 processes = 2 each, fewer than the primary's 5.
    assert pools(render(PROD, **REPLICA, **{"database.replica.maxConnections": "50"})) == (1, 1)
    # Its own reserve: (100 - 40) / 15 = 4.
    assert pools(render(PROD, **REPLICA, **{"database.replica.reservedConnections": "40"})) == (2, 2)


def test_pools_that_cannot_fit_the_replica_fail_the_render_with_the_numbers() -> None:
    sets = {"database.replica.maxConnections": "50", "config.dbPoolSize": "3", "config.dbMaxOverflow": "2"}
    message = failure(PROD, **REPLICA, **sets)
    assert (
        "the release needs more connections to the replica than database.replica.maxConnections allows: "
        "15 pods (autoscaling.maxReplicas 12 + a rolling update's surge of 3) x 1 worker(s) x "
        "(config.dbPoolSize 3 + config.dbMaxOverflow 2), the replica's pool being the primary's size, = 75 "
        "connections, + 10 reserved (database.replica.reservedConnections) = 85, more than "
        "database.replica.maxConnections 50."
    ) in message
    assert (
        "raise database.replica.maxConnections (the replica's max_connections, with its owners) to at least 85"
        in (message)
    )
    # Through PgBouncer, its server pool to the replica is what must fit: 20 + 10 > 25.
    message = failure(
        PROD, **REPLICA, **{"database.pooler": "pgbouncer", "database.replica.maxConnections": "25"}
    )
    assert "PgBouncer's server connections to the replica do not fit it" in message
    assert "= 30, more than database.replica.maxConnections 25" in message


@pytest.mark.parametrize("values", [PROD, STAGING], ids=lambda p: p.name)
def test_a_replica_without_redis_is_refused_outside_development(values: Path) -> None:
    message = failure(values, **NO_REDIS, **{"database.replica.enabled": "true"})
    assert "database.replica.enabled needs Redis outside development and test" in message
    assert (
        "set redis.enabled and its URL (secret.redisUrl, or the key redis-url of secret.existingSecret)"
        in message
    )


def test_a_replica_without_redis_renders_in_development_or_with_redis_from_extra_env() -> None:
    objects = render(DEV, **{"database.replica.enabled": "true", "secret.databaseReadUrl": READ_URL})
    assert "INKWELL_REDIS_URL" not in env(one(objects, "Deployment"))
    extra = {"extraEnv[0].name": "INKWELL_REDIS_URL", "extraEnv[0].value": "redis://redis:6379/0"}
    objects = render(PROD, **{"database.replica.enabled": "true"}, **extra)
    assert env(one(objects, "Deployment"))["INKWELL_REDIS_URL"]["value"] == "redis://redis:6379/0"


def test_urls_for_what_is_not_switched_on_are_refused() -> None:
    message = failure(DEV, **{"secret.databaseReadUrl": READ_URL})
    assert "secret.databaseReadUrl is set but database.replica.enabled is false" in message
    message = failure(DEV, **{"secret.redisUrl": "redis://redis:6379/0"})
    assert "secret.redisUrl is set but redis.enabled is false" in message
    assert "secret.redisUrl is required with redis.enabled" in failure(DEV, **{"redis.enabled": "true"})
    message = failure(
        PROD, **{"extraEnv[0].name": "INKWELL_DATABASE_READ_URL", "extraEnv[0].value": READ_URL}
    )
    assert "extraEnv sets INKWELL_DATABASE_READ_URL: use database.replica instead" in message


def test_the_schema_refuses_a_mistyped_replica() -> None:
    assert "additional properties 'maxLag' not allowed" in failure(DEV, **{"database.replica.maxLag": "5"})
    failure(DEV, **{"database.replica.maxConnections": "0"})
    failure(DEV, **{"database.replica.enabled": "sometimes"})
    failure(DEV, **{"redis.url": "redis://redis:6379/0"})
