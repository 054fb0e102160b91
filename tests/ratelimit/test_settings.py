"""Rate limits counted in each process would multiply a client's quota by the processes and pods: the
service refuses them without Redis outside development and test, and refuses a rate it cannot read."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from service.config import Settings
from service.ratelimit import create_limiter

SECRET = "s" * 32


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, secret_key=SECRET, **values)  # type: ignore[call-arg]


@pytest.mark.parametrize("environment", ["staging", "production"])
def test_limits_outside_development_need_redis(environment: str) -> None:
    with pytest.raises(ValidationError, match="INKWELL_RATE_LIMITS_ENABLED needs INKWELL_REDIS_URL"):
        settings(environment=environment)
    assert settings(environment=environment, redis_url="redis://redis:6379/0").rate_limits_enabled
    assert not settings(environment=environment, rate_limits_enabled=False).rate_limits_enabled


def test_development_counts_in_memory_with_the_limits_on_by_default() -> None:
    limiter = create_limiter(settings(environment="development"))
    assert limiter is not None
    assert type(limiter.storage).__name__ == "MemoryStorage"
    assert sorted(limiter.policies) == ["login", "reads", "registration", "writes"]
    assert create_limiter(settings(environment="development", rate_limits_enabled=False)) is None


@pytest.mark.parametrize("rate", ["ten per minute", "10/fortnight", "10/minute;100/hour"])
def test_a_rate_it_cannot_read_is_refused_at_startup(rate: str) -> None:
    with pytest.raises(ValidationError, match="rate_limit_reads"):
        settings(rate_limit_reads=rate)


def test_an_empty_rate_turns_its_policy_off() -> None:
    limiter = create_limiter(settings(rate_limit_reads=""))
    assert limiter is not None
    assert "reads" not in limiter.policies
