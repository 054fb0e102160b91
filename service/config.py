"""Settings, read once from the environment (prefix INKWELL_), so every process agrees on them."""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from service.auth.roles import Role
from service.dialects import Pooler

DEV_SECRET = "inkwell-development-secret-do-not-use-in-production"  # noqa: S105 - refused outside development


class Environment(StrEnum):
    development = "development"
    test = "test"
    staging = "staging"
    production = "production"

    @property
    def is_local(self) -> bool:
        """One process on a developer's machine or in the suite: development defaults are allowed."""
        return self in {Environment.development, Environment.test}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="INKWELL_", env_file=".env", extra="ignore")

    environment: Environment = Environment.development
    database_url: str = "sqlite+aiosqlite:///var/inkwell.db"
    # `pgbouncer`: the URL names a PgBouncer in transaction mode in front of PostgreSQL
    # (docs/connections.md); the pool below is then of connections to it.
    database_pooler: Pooler = Pooler.none
    db_pool_size: int = Field(10, ge=1)
    db_max_overflow: int = Field(10, ge=0)
    db_pool_timeout: float = Field(10.0, gt=0)
    # Connections all of the release's pods may hold together at the database, as the chart sized
    # their pools for (charts/inkwell: database.maxConnections less what it reserves); only exported,
    # for the dashboards and alerts to compare with. 0: unknown.
    db_connection_budget: int = Field(0, ge=0)
    # A streaming replica of database_url (PostgreSQL 15): reads of GET and HEAD go to it once it has
    # replayed every write they must see, and to the primary otherwise (docs/replicas.md). Its pool
    # is sized as the primary's. Empty: every read on the primary.
    database_read_url: str = ""
    # A replica further behind than this serves no read until it has caught up.
    db_read_max_lag_seconds: float = Field(5.0, gt=0)
    # How often each process reads the replica's replay position and lag.
    db_replica_check_seconds: float = Field(0.5, gt=0)
    db_echo: bool = False

    secret_key: str = DEV_SECRET
    jwt_algorithm: Literal["HS256", "HS384", "HS512"] = "HS256"
    jwt_ttl_seconds: int = Field(7 * 24 * 3600, ge=60)

    # Argon2id cost; the defaults are argon2-cffi's RFC 9106 "low memory" profile.
    argon2_time_cost: int = Field(3, ge=1)
    argon2_memory_cost_kib: int = Field(65536, ge=8)
    argon2_parallelism: int = Field(4, ge=1)
    # Each hash holds argon2_memory_cost_kib for as long as it runs: at most this many run at once in
    # a process (the chart sizes it from the pod's memory limit); the others wait up to
    # argon2_wait_seconds for a slot, then get 503 with Retry-After (service.auth.security).
    argon2_max_concurrent: int = Field(2, ge=1)
    argon2_wait_seconds: float = Field(2.0, ge=0)

    default_role: Role = Role.editor
    cors_origins: Annotated[list[str], NoDecode] = ["*"]
    max_body_bytes: int = Field(1024 * 1024, ge=1024)
    log_level: str = "INFO"
    log_format: Literal["json", "console"] = "json"
    access_log: bool = True
    # Peers whose X-Forwarded-For is believed (the ingress controller); IPs or CIDRs.
    trusted_proxies: Annotated[list[str], NoDecode] = ["127.0.0.1", "::1"]
    # Rate limits (service/ratelimit.py, docs/ratelimits.md), each in the `limits` notation
    # ("10/minute"; empty: that policy is off), counted per client IP (as resolved through
    # trusted_proxies) or per signed-in user, in Redis (redis_url) so every process and pod shares
    # one budget; in-process only in development and test, and refused elsewhere.
    rate_limits_enabled: bool = True
    rate_limit_login: str = "100/minute"  # login and /api/token attempts per IP
    rate_limit_registration: str = "30/minute"  # registrations per IP
    rate_limit_writes: str = "300/minute"  # other writes per user, per IP when anonymous
    rate_limit_reads: str = "12000/minute"  # GET and HEAD per IP
    # An account's consecutive failed logins past the free ones each make it wait twice as long as
    # the last (from login_backoff_seconds, at most login_backoff_max_seconds); a success resets it.
    rate_limit_login_free_failures: int = Field(5, ge=0)
    rate_limit_login_backoff_seconds: float = Field(1.0, gt=0)
    rate_limit_login_backoff_max_seconds: float = Field(300.0, gt=0)

    metrics_enabled: bool = True
    # The edge (service.edge, service.docs, README "Security"): /metrics on a port of its own, served
    # by `inkwell serve` (0: on the public port, as `make run` has it); the Host names answered
    # (Starlette's patterns, "*.example.com"; "*": any; probes and /metrics answer any); HSTS max-age
    # (0: none, for a deployment that is not behind TLS); /docs, /redoc and /openapi.json.
    metrics_port: int = Field(0, ge=0, le=65535)
    allowed_hosts: Annotated[list[str], NoDecode] = ["*"]
    hsts_seconds: int = Field(0, ge=0)
    docs_enabled: bool = True
    # Public reads are cached (service/cache.py): in Redis when a URL is set, in-process only in
    # development and test (one process), otherwise not at all.
    redis_url: str = ""
    cache_enabled: bool = True
    cache_ttl_seconds: float = Field(60.0, gt=0)
    sentry_dsn: str | None = None
    # Set by the image build (or the chart) so build info and Sentry releases name the commit.
    git_revision: str = "unknown"

    # On SIGTERM: readiness answers 503 for drain_seconds (so load balancers stop sending), then
    # in-flight requests get up to graceful_timeout_seconds to finish before the process exits.
    drain_seconds: float = Field(0.0, ge=0)
    graceful_timeout_seconds: float = Field(20.0, gt=0)
    # With several workers: how long a new one may take to import and start serving (4.5 to 6 s on a
    # busy 2-core machine, and more when every core is taken) before its supervisor replaces it, and
    # how long one that serves may take to answer the supervisor's ping (service.serving).
    worker_start_timeout_seconds: float = Field(60.0, gt=0)
    worker_healthcheck_seconds: float = Field(10.0, gt=0)

    # Live updates over WebSockets (service.live, docs/live.md): GET /api/live, off when false; the
    # events each socket may have waiting before it is closed as a slow consumer; at most one
    # favourite count per article per coalesce interval; events the bus keeps for replay; topics per
    # socket; open sockets per user and per client IP (across pods, in Redis); ping interval (uvicorn
    # closes a socket whose pong is that late); a socket with no subscription for idle_seconds closes.
    live_enabled: bool = True
    live_queue_events: int = Field(256, ge=1)
    live_coalesce_seconds: float = Field(1.0, ge=0)
    live_replay_events: int = Field(10_000, ge=1)
    live_max_topics: int = Field(100, ge=1)
    live_max_connections_per_user: int = Field(8, ge=1)
    live_max_connections_per_ip: int = Field(64, ge=1)
    live_heartbeat_seconds: float = Field(20.0, gt=0)
    live_idle_seconds: float = Field(300.0, gt=0)

    @field_validator("cors_origins", "trusted_proxies", "allowed_hosts", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.strip()
            if value.startswith("["):
                import json

                return json.loads(value)
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @field_validator("rate_limit_login", "rate_limit_registration", "rate_limit_writes", "rate_limit_reads")
    @classmethod
    def _one_rate(cls, value: str) -> str:
        # Parsed now, so a typo fails at startup; one rate per policy, so its headers name one quota.
        if value.strip():
            from limits import parse_many

            try:
                rates = parse_many(value)
            except ValueError as exc:
                raise ValueError(f"{value!r} is not a rate such as '10/minute'") from exc
            if len(rates) != 1:
                raise ValueError(f"{value!r}: one rate per policy, such as '10/minute'")
        return value.strip()

    @model_validator(mode="after")
    def _refuse_a_pooler_without_postgresql(self) -> Settings:
        if self.database_pooler is not Pooler.none and not self.database_url.startswith("postgresql"):
            raise ValueError(
                f"INKWELL_DATABASE_POOLER={self.database_pooler} needs a PostgreSQL INKWELL_DATABASE_URL"
            )
        return self

    @model_validator(mode="after")
    def _refuse_a_replica_it_cannot_route_to(self) -> Settings:
        if not self.database_read_url:
            return self
        if not (
            self.database_url.startswith("postgresql") and self.database_read_url.startswith("postgresql")
        ):
            raise ValueError("INKWELL_DATABASE_READ_URL needs PostgreSQL for it and for INKWELL_DATABASE_URL")
        if not self.redis_url and not self.environment.is_local:
            # Read-your-writes is kept per user where every pod sees it; in one process, in memory.
            raise ValueError(
                "INKWELL_DATABASE_READ_URL needs INKWELL_REDIS_URL outside development and test: "
                "every pod must know which users' writes the replica has not replayed yet"
            )
        return self

    @model_validator(mode="after")
    def _refuse_development_secret(self) -> Settings:
        if not self.environment.is_local and self.secret_key == DEV_SECRET:
            raise ValueError(
                "INKWELL_SECRET_KEY still holds the development default; "
                f"set a real secret to run with INKWELL_ENVIRONMENT={self.environment}"
            )
        if not self.environment.is_local and len(self.secret_key) < 32:
            raise ValueError("INKWELL_SECRET_KEY must be at least 32 characters outside development")
        return self

    @model_validator(mode="after")
    def _refuse_rate_limits_each_process_counts_alone(self) -> Settings:
        if self.rate_limits_enabled and not self.redis_url and not self.environment.is_local:
            raise ValueError(
                "INKWELL_RATE_LIMITS_ENABLED needs INKWELL_REDIS_URL outside development and test: "
                "limits counted in each process would let a client through as many times over as "
                "there are processes and pods (or set INKWELL_RATE_LIMITS_ENABLED=false)"
            )
        return self


@lru_cache
def get_settings() -> Settings:
    return Settings()
