"""The environment the chart renders is one the service starts with: the ConfigMap and the pod's env,
with stand-ins for what comes from the Secret, read by the service's own Settings. Helm reads numbers
from values files as floats, so a value printed without `int` reaches the service as 1.048576e+06."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from service.config import Settings
from service.dialects import Pooler
from tests.deploy.budget import PROD, config, env
from tests.support.helm import CI_VALUES, one, render

pytestmark = pytest.mark.slow

STAND_INS = {
    "INKWELL_SECRET_KEY": "s" * 32,
    "INKWELL_DATABASE_URL": "postgresql+asyncpg://inkwell:secret@postgres:5432/inkwell",
    "INKWELL_DATABASE_READ_URL": "postgresql+asyncpg://inkwell:secret@postgres-replica:5432/inkwell",
    "INKWELL_REDIS_URL": "redis://redis:6379/0",
}


def settings(objects: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings as a pod of the Deployment would read them (env wins over envFrom, as in Kubernetes)."""
    values: dict[str, str] = dict(config(objects))
    for name, entry in env(one(objects, "Deployment")).items():
        if "value" in entry:
            values[name] = entry["value"]
        elif "secretKeyRef" in entry.get("valueFrom", {}) and name in STAND_INS:
            values[name] = STAND_INS[name]
    for name in [n for n in os.environ if n.startswith("INKWELL_")]:
        monkeypatch.delenv(name)
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return Settings(_env_file=None)  # type: ignore[call-arg]


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.name)
def test_every_environment_renders_settings_the_service_accepts(
    values: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    read = settings(render(values), monkeypatch)
    assert read.max_body_bytes == 1048576
    assert read.environment.value == values.name.removesuffix("-values.yaml")


def test_pgbouncer_and_a_replica_render_settings_the_service_accepts(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    values = tmp_path / "values.yaml"
    values.write_text(
        "database: {pooler: pgbouncer, pgbouncer: {maxClientConnections: 150},"
        " replica: {enabled: true, maxLagSeconds: 2.5}}\nredis: {enabled: true}\n"
    )
    read = settings(render(PROD, values), monkeypatch)
    assert read.database_pooler is Pooler.pgbouncer
    assert (read.db_pool_size, read.db_max_overflow, read.db_connection_budget) == (3, 2, 150)
    assert read.database_read_url == STAND_INS["INKWELL_DATABASE_READ_URL"]
    assert (read.db_read_max_lag_seconds, read.db_replica_check_seconds) == (2.5, 0.5)
    assert read.redis_url == STAND_INS["INKWELL_REDIS_URL"]


def test_the_chart_has_the_values_the_stand_ins_cover() -> None:
    # A new secret-backed variable needs a stand-in here, or the tests above would not see it.
    objects = render(PROD, **{"database.replica.enabled": "true", "redis.enabled": "true"})
    from_secret = {
        name
        for name, entry in env(one(objects, "Deployment")).items()
        if "secretKeyRef" in entry.get("valueFrom", {})
        and not entry["valueFrom"]["secretKeyRef"].get("optional")
    }
    assert from_secret == set(STAND_INS)
