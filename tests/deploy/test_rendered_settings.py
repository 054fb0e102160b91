"""The environment the chart renders is one the service starts with: the ConfigMap and the pod's env,
with stand-ins for what comes from the Secret, read by the service's own Settings. Helm reads numbers
from values files as floats, so a value printed without `int` reaches the service as 1.048576e+06."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from service.config import Settings
from tests.support.helm import CI_VALUES, one, render

pytestmark = pytest.mark.slow

STAND_INS = {
    "INKWELL_SECRET_KEY": "s" * 32,
    "INKWELL_DATABASE_URL": "postgresql+asyncpg://inkwell:secret@postgres:5432/inkwell",
}


def settings(objects: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings as a pod of the Deployment would read them (env wins over envFrom, as in Kubernetes)."""
    values: dict[str, str] = dict(one(objects, "ConfigMap", "-inkwell")["data"])
    container = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    for entry in container["env"]:
        name = entry["name"]
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
