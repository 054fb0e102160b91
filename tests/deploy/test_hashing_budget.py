"""The password hashes each process may run at once, as the chart renders them: as many Argon2id hashes
as its share of the pod's memory limit holds beside the process itself, so a wave of logins is queued
and shed by the service (service/auth/security.py) instead of getting the pod killed for memory; a
limit that cannot hold even one hash, or a bound it cannot hold, fails the render with the numbers."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.deploy.budget import DEV, PROD, config, failure, workers
from tests.support.helm import CHART, CI_VALUES, one, render

pytestmark = pytest.mark.slow

MIB = {"Mi": 1, "Gi": 1024}


def memory_limit_mib(objects: list[dict[str, object]]) -> int:
    deployment = one(objects, "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]  # type: ignore[index]
    limit: str = container["resources"]["limits"]["memory"]
    return int(limit[:-2]) * MIB[limit[-2:]]


def defaults() -> dict[str, int]:
    values = yaml.safe_load((CHART / "values.yaml").read_text())["config"]
    return {"base": values["processMemoryMi"], "hash": values["argon2MemoryCostKib"] // 1024}


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.name)
def test_every_environment_holds_its_hashes_in_flight_within_the_memory_limit(values: Path) -> None:
    objects = render(values)
    data = config(objects)
    concurrent = int(data["INKWELL_ARGON2_MAX_CONCURRENT"])
    hash_mib = int(data["INKWELL_ARGON2_MEMORY_COST_KIB"]) // 1024
    assert concurrent >= 1
    assert workers(objects) * (defaults()["base"] + concurrent * hash_mib) <= memory_limit_mib(objects)


@pytest.mark.parametrize(
    ("values", "sets", "expected"),
    [
        # 512 Mi, one worker: (512 - 192) / 64 = 5.
        (DEV, {}, 5),
        # 768 Mi: (768 - 192) / 64 = 9, at most 8.
        (PROD, {}, 8),
        # Two workers share 1 Gi: (512 - 192) / 64 = 5 each.
        (DEV, {"resources.limits.memory": "1Gi", "workers": "2"}, 5),
        # A cheaper hash (16 MiB) fits more, still at most 8.
        (DEV, {"config.argon2MemoryCostKib": "16384"}, 8),
        # Set and fitting: kept.
        (DEV, {"config.argon2MaxConcurrent": "3"}, 3),
    ],
    ids=["dev", "prod-capped", "two-workers", "cheaper-hash", "set"],
)
def test_the_bound_is_what_the_memory_limit_holds(values: Path, sets: dict[str, str], expected: int) -> None:
    assert int(config(render(values, **sets))["INKWELL_ARGON2_MAX_CONCURRENT"]) == expected


def test_a_limit_that_cannot_hold_one_hash_beside_the_process_fails_the_render() -> None:
    message = failure(DEV, **{"resources.limits.memory": "200Mi"})
    assert "it holds 0 password hash(es)" in message
    assert "Raise resources.limits.memory to at least 256 Mi" in message


def test_a_bound_the_limit_cannot_hold_fails_the_render() -> None:
    message = failure(DEV, **{"config.argon2MaxConcurrent": "9"})
    assert "config.argon2MaxConcurrent 9 does not fit" in message
    assert "at least 768 Mi" in message
