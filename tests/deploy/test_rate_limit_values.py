"""Rate limits in the chart (rateLimits): on wherever the service can count them for every pod (with
Redis) or in each process (development and test), their rates reaching the service as the values say;
asked for without Redis elsewhere, the render fails, as the service would refuse to start."""

from __future__ import annotations

import pytest

from tests.deploy.budget import DEV, NO_REDIS, PROD, config, failure
from tests.support.helm import render

pytestmark = pytest.mark.slow

REDIS = {"redis.enabled": "true"}


def limits(**sets: str) -> dict[str, str]:
    data = config(render(PROD, **sets))
    return {name: value for name, value in data.items() if name.startswith("INKWELL_RATE_LIMIT")}


def test_on_with_redis_at_the_values_rates() -> None:
    assert limits(**REDIS) == {
        "INKWELL_RATE_LIMITS_ENABLED": "true",
        "INKWELL_RATE_LIMIT_LOGIN": "100/minute",
        "INKWELL_RATE_LIMIT_REGISTRATION": "30/minute",
        "INKWELL_RATE_LIMIT_WRITES": "300/minute",
        "INKWELL_RATE_LIMIT_READS": "12000/minute",
        "INKWELL_RATE_LIMIT_LOGIN_FREE_FAILURES": "5",
        "INKWELL_RATE_LIMIT_LOGIN_BACKOFF_SECONDS": "1",
        "INKWELL_RATE_LIMIT_LOGIN_BACKOFF_MAX_SECONDS": "300",
    }
    changed = limits(**REDIS, **{"rateLimits.reads": "600/minute", "rateLimits.loginBackoffSeconds": "2"})
    assert changed["INKWELL_RATE_LIMIT_READS"] == "600/minute"
    assert changed["INKWELL_RATE_LIMIT_LOGIN_BACKOFF_SECONDS"] == "2"
    # Redis named through extraEnv counts as Redis.
    extra = {"extraEnv[0].name": "INKWELL_REDIS_URL", "extraEnv[0].value": "redis://redis:6379/0"}
    assert limits(**extra)["INKWELL_RATE_LIMITS_ENABLED"] == "true"


def test_off_by_default_without_redis_or_when_switched_off() -> None:
    assert limits(**NO_REDIS) == {"INKWELL_RATE_LIMITS_ENABLED": "false"}
    assert limits(**REDIS, **{"rateLimits.enabled": "false"}) == {"INKWELL_RATE_LIMITS_ENABLED": "false"}


def test_on_in_development_without_redis() -> None:
    assert config(render(DEV))["INKWELL_RATE_LIMITS_ENABLED"] == "true"


def test_asked_for_without_redis_outside_development_the_render_fails() -> None:
    message = failure(PROD, **NO_REDIS, **{"rateLimits.enabled": "true"})
    assert (
        "rateLimits.enabled needs Redis outside development and test (config.environment is production)"
        in message
    )


def test_a_rate_the_service_cannot_read_fails_the_schema() -> None:
    assert "rateLimits" in failure(PROD, **REDIS, **{"rateLimits.reads": "lots"})
