"""Error reports: a 500 reaches a real Sentry endpoint once, scrubbed and linked to its trace; 4xx never do."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sentry_sdk
from fastapi import FastAPI, Request
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.types import ASGIApp, Receive, Scope, Send

from launch import free_port, wait_for_port
from service import __version__
from service.config import Settings
from service.dependencies import CurrentUser
from service.errors import ServiceUnavailable
from service.main import create_app
from service.middleware import is_expected_failure
from service.models import User
from service.observability import errors, tracing
from tests.conftest import on_test_transaction, test_settings
from tests.factories import create_user
from tests.support.asgi import asgi_client
from tests.support.sentry import SentryReceiver, sentry_receiver

pytestmark = pytest.mark.anyio

REVISION = "abc1234"
SECRETS = {
    "token": "secret-jwt-value",
    "cookie": "cookie-secret-value",
    "password": "body-password-value",
    "query": "query-secret-value",
    "client ip": "203.0.113.9",
}


@pytest.fixture
def receiver(database_url: str) -> Iterator[SentryReceiver]:
    with sentry_receiver() as receiver:
        try:
            yield receiver
        finally:
            # The Sentry client is process-global: settings without a DSN must close it, so no other
            # test in this process reports anywhere.
            assert errors.configure_sentry(test_settings(database_url)) is False
            assert not sentry_sdk.get_client().is_active()


def sentry_settings(database_url: str, receiver: SentryReceiver) -> Settings:
    return test_settings(database_url, sentry_dsn=receiver.dsn, git_revision=REVISION)


def app_client(app: FastAPI) -> httpx.AsyncClient:
    # Starlette re-raises after sending the 500, as a server sees it; the client must get the 500.
    return asgi_client(app, raise_app_exceptions=False)


def add_failing_routes(app: FastAPI) -> None:
    @app.post("/api/boom")
    async def boom(request: Request) -> None:
        password = (await request.json())["user"]["password"]
        # A local holding the password, in the frame Sentry reports.
        assert password
        raise RuntimeError("kaboom")

    @app.get("/api/boom-as-user")
    async def boom_as_user(user: CurrentUser) -> None:
        raise RuntimeError(f"kaboom for {user.username}")

    @app.get("/api/lost-database")
    async def lost_database() -> None:
        raise OperationalError("SELECT 1", {}, ConnectionRefusedError("connection refused"))

    @app.get("/api/chosen-503")
    async def chosen_503() -> None:
        raise ServiceUnavailable("search")


@pytest.fixture
async def client(
    receiver: SentryReceiver,
    database_url: str,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(sentry_settings(database_url, receiver), engine=engine)
    on_test_transaction(app, sessionmaker)
    add_failing_routes(app)
    async with app_client(app) as client:
        yield client


async def post_boom(client: httpx.AsyncClient) -> httpx.Response:
    return await client.post(
        f"/api/boom?token={SECRETS['query']}&page=2",
        json={"user": {"email": "jake@example.org", "password": SECRETS["password"]}},
        headers={
            "Authorization": f"Token {SECRETS['token']}",
            "Cookie": f"session={SECRETS['cookie']}",
            "X-Forwarded-For": SECRETS["client ip"],
        },
    )


def flushed_events(receiver: SentryReceiver, expected: int) -> list[dict[str, Any]]:
    sentry_sdk.flush(timeout=10)
    receiver.wait_for_events(expected)
    events = receiver.events()
    assert len(events) == expected, [event["exception"]["values"][-1] for event in events]
    return events


async def test_an_unhandled_error_is_reported_once_with_release_and_no_secrets(
    client: httpx.AsyncClient, receiver: SentryReceiver
) -> None:
    response = await post_boom(client)

    # The Conduit 500 body is what the client sees; the exception still goes to Sentry.
    assert response.status_code == 500
    assert response.json() == {"errors": {"server": ["an unexpected error occurred"]}}
    [event] = flushed_events(receiver, 1)
    exception = event["exception"]["values"][-1]
    assert (exception["type"], exception["value"]) == ("RuntimeError", "kaboom")
    assert exception["mechanism"]["handled"] is False
    assert event["level"] == "error"
    assert event["environment"] == "test"
    assert event["release"] == f"inkwell@{__version__}+{REVISION}"
    # No span is active without tracing, so there is nothing to link.
    assert "trace_id" not in event.get("tags", {})
    request = event["request"]
    assert request["method"] == "POST"
    assert request["url"] == "http://testserver/api/boom"
    assert request["query_string"] == "token=[Filtered]&page=2"
    assert {name.lower() for name in request["headers"]} & {
        "authorization",
        "cookie",
        "x-forwarded-for",
    } == set()
    assert request["headers"]["content-type"] == "application/json"
    assert {"data", "cookies", "env"} & request.keys() == set()
    assert all("vars" not in frame for frame in exception["stacktrace"]["frames"])
    assert any(frame["function"] == "boom" and frame["in_app"] for frame in exception["stacktrace"]["frames"])
    raw = receiver.raw()
    for name, secret in SECRETS.items():
        assert secret.encode() not in raw, f"the {name} reached Sentry"


async def test_an_error_for_a_signed_in_user_names_only_the_user_id(
    client: httpx.AsyncClient, receiver: SentryReceiver, db: AsyncSession
) -> None:
    account = await create_user(client)
    user_id = (await db.execute(select(User.id).where(User.username == account.username))).scalar_one()

    response = await client.get("/api/boom-as-user", headers=account.headers)

    assert response.status_code == 500
    [event] = flushed_events(receiver, 1)
    assert event["exception"]["values"][-1]["value"] == f"kaboom for {account.username}"
    assert event["user"] == {"id": str(user_id)}
    raw = receiver.raw()
    assert account.email.encode() not in raw
    assert account.token.encode() not in raw


async def test_client_errors_are_never_reported(client: httpx.AsyncClient, receiver: SentryReceiver) -> None:
    expected: list[tuple[str, str, dict[str, Any], int]] = [
        ("GET", "/api/user", {}, 401),
        ("GET", "/api/user", {"headers": {"Authorization": "Token not-a-jwt"}}, 401),
        ("GET", "/api/articles/no-such-article", {}, 404),
        ("GET", "/no/such/path", {}, 404),
        ("DELETE", "/api/tags", {}, 405),
        ("POST", "/api/users", {"json": {"user": {}}}, 422),
        (
            "POST",
            "/api/users",
            {"content": b"{not json", "headers": {"Content-Type": "application/json"}},
            422,
        ),
    ]
    for method, path, options, status in expected:
        assert (await client.request(method, path, **options)).status_code == status, (method, path)

    # The one 500 proves reports were flowing all along: it is the only event.
    assert (await post_boom(client)).status_code == 500
    [event] = flushed_events(receiver, 1)
    assert event["exception"]["values"][-1]["type"] == "RuntimeError"


async def test_database_outages_and_chosen_503s_are_logged_not_reported(
    receiver: SentryReceiver, database_url: str
) -> None:
    dead = f"postgresql+asyncpg://inkwell:inkwell@127.0.0.1:{free_port()}/inkwell"
    app = create_app(sentry_settings(dead, receiver))
    add_failing_routes(app)
    try:
        async with app_client(app) as client:
            # Through the session dependency (ServiceUnavailable), then through the last-resort
            # handler's outage branch, which reports nothing.
            for path in ("/api/articles", "/api/lost-database", "/api/chosen-503"):
                response = await client.get(path)
                assert response.status_code == 503, path
                assert response.headers["Retry-After"] == "1"
            assert (await post_boom(client)).status_code == 500
    finally:
        await app.state.engine.dispose()

    [event] = flushed_events(receiver, 1)
    assert event["exception"]["values"][-1]["type"] == "RuntimeError"


class _RequestSpan:
    """Stands in for OpenTelemetry's server span: outside the pipeline's last-resort layer (which
    reports to Sentry), as the response observer's span is."""

    def __init__(self, app: ASGIApp, *, provider: TracerProvider, spans: list[trace.Span]) -> None:
        self.app = app
        self.tracer = provider.get_tracer("test")
        self.spans = spans

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        with self.tracer.start_as_current_span("GET /api/boom-in-span") as span:
            self.spans.append(span)
            await self.app(scope, receive, send)


async def test_an_error_inside_a_request_span_carries_its_trace_id(
    receiver: SentryReceiver, database_url: str, engine: AsyncEngine
) -> None:
    # A provider of the test's own, never made global: only the span context is shared, and the
    # `with` block restores it.
    provider = TracerProvider(shutdown_on_exit=False)
    spans: list[trace.Span] = []
    app = create_app(sentry_settings(database_url, receiver), engine=engine)
    app.add_middleware(_RequestSpan, provider=provider, spans=spans)

    @app.get("/api/boom-in-span")
    async def boom_in_span() -> None:
        raise RuntimeError("kaboom in a span")

    async with app_client(app) as client:
        assert (await client.get("/api/boom-in-span")).status_code == 500

    [event] = flushed_events(receiver, 1)
    context = spans[0].get_span_context()
    trace_id, span_id = format(context.trace_id, "032x"), format(context.span_id, "016x")
    assert event["tags"]["trace_id"] == trace_id
    assert event["contexts"]["otel"] == {"trace_id": trace_id, "span_id": span_id}
    assert trace.get_current_span() is trace.INVALID_SPAN


# The real app behind uvicorn, plus one route that fails: configured as `inkwell serve` configures it.
FAILING_SERVER = textwrap.dedent(
    """
    import sys

    import uvicorn

    from service.config import get_settings
    from service.main import create_app
    from service.observability.logging import configure_logging


    def factory():
        app = create_app()

        @app.get("/api/boom")
        async def boom():
            raise RuntimeError("kaboom in a real server")

        return app


    configure_logging(get_settings())
    uvicorn.run(
        "failing_server:factory", factory=True, host="127.0.0.1", port=int(sys.argv[1]),
        log_config=None, access_log=False,
    )
    """
)


def test_a_real_server_reports_one_event_with_the_upstream_trace_id(tmp_path: Path) -> None:
    (tmp_path / "failing_server.py").write_text(FAILING_SERVER)
    trace_id, parent_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    port = free_port()
    with sentry_receiver() as receiver:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("INKWELL_", "OTEL_"))} | {
            "PYTHONPATH": os.pathsep.join([str(tmp_path), str(Path(__file__).resolve().parents[2])]),
            "INKWELL_ENVIRONMENT": "staging",
            "INKWELL_SECRET_KEY": "staging-secret-that-is-long-enough-0123456789",
            "INKWELL_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'unused.db'}",
            "INKWELL_SENTRY_DSN": receiver.dsn,
            "INKWELL_GIT_REVISION": "deadbeef",
            # Staging without Redis: rate limits would refuse to start (they are not this test's subject).
            "INKWELL_RATE_LIMITS_ENABLED": "false",
            # Tracing on, with a collector that is not there: spans are dropped, requests unaffected.
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{free_port()}",
        }
        process = subprocess.Popen(
            [sys.executable, str(tmp_path / "failing_server.py"), str(port)],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            wait_for_port(port, timeout=60)
            base = f"http://127.0.0.1:{port}"
            # A connection each: uvicorn closes a keep-alive connection once an exception has left the app.
            failed = httpx.get(f"{base}/api/boom", headers={"traceparent": f"00-{trace_id}-{parent_id}-01"})
            assert failed.status_code == 500
            assert failed.json() == {"errors": {"server": ["an unexpected error occurred"]}}
            assert httpx.get(f"{base}/api/user").status_code == 401
            assert httpx.get(f"{base}/no/such/path").status_code == 404
            receiver.wait_for_events(1, timeout=30)
        finally:
            process.send_signal(signal.SIGTERM)
            output, _ = process.communicate(timeout=60)
        # Plain uvicorn re-raises SIGTERM once it has shut down cleanly.
        assert process.returncode in (0, -signal.SIGTERM), output

    # Uvicorn logs the exception that leaves the app, and the exporter logs its failures: neither
    # may become a second event.
    [event] = receiver.events()
    exception = event["exception"]["values"][-1]
    assert (exception["type"], exception["value"]) == ("RuntimeError", "kaboom in a real server")
    assert event["environment"] == "staging"
    assert event["release"] == f"inkwell@{__version__}+deadbeef"
    assert event["request"]["url"] == f"http://127.0.0.1:{port}/api/boom"
    assert event["tags"]["trace_id"] == trace_id
    assert event["contexts"]["otel"]["trace_id"] == trace_id
    # The server span's own id, a child of the caller's span.
    assert len(event["contexts"]["otel"]["span_id"]) == 16
    assert event["contexts"]["otel"]["span_id"] != parent_id


def test_before_send_links_the_current_trace(monkeypatch: pytest.MonkeyPatch) -> None:
    ids = ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331")
    monkeypatch.setattr(tracing, "current_trace_ids", lambda: ids)

    event = errors.before_send({"message": "boom", "tags": {"kept": "yes"}}, {})

    assert event is not None
    assert event["tags"] == {"kept": "yes", "trace_id": ids[0]}
    assert event["contexts"]["otel"] == {"trace_id": ids[0], "span_id": ids[1]}


def test_before_send_adds_no_trace_without_a_span(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tracing, "current_trace_ids", lambda: None)

    event = errors.before_send({"message": "boom"}, {})

    assert event == {"message": "boom"}


def test_before_send_drops_chosen_responses_and_outages(database_url: str) -> None:
    # As create_app wires it: the app says which failures are answers, not bugs.
    errors.configure_sentry(test_settings(database_url), expected=is_expected_failure)
    chosen = ServiceUnavailable("database")
    outage = OperationalError("SELECT 1", {}, ConnectionRefusedError())
    bug = KeyError("slug")
    for exc, kept in ((chosen, False), (outage, False), (ConnectionRefusedError(), False), (bug, True)):
        event = errors.before_send({"level": "error"}, {"exc_info": (type(exc), exc, None)})
        assert (event is not None) is kept, exc


def test_scrub_removes_credentials_bodies_and_personal_data() -> None:
    event: Any = {
        "request": {
            "url": "https://inkwell.example/api/articles?access_token=abc&page=2",
            "query_string": "password=hunter2&api_key=k1&limit=20&sessionid=s1",
            "headers": {
                "Authorization": "Token t",
                "Cookie": "session=c",
                "X-Forwarded-For": "203.0.113.9",
                "X-Api-Key": "k",
                "Accept": "application/json",
            },
            "data": {"user": {"password": "hunter2"}},
            "cookies": {"session": "c"},
            "env": {"REMOTE_ADDR": "203.0.113.9"},
        },
        "user": {"id": "7", "email": "jake@example.org", "ip_address": "203.0.113.9"},
        "contexts": {"response": {"headers": {"Set-Cookie": "session=c", "Content-Type": "text/plain"}}},
        "breadcrumbs": {
            "values": [
                {"message": "GET /api/user?token=abc", "data": {"url": "http://x/?reset_token=r&a=1"}},
            ]
        },
    }

    scrubbed: Any = errors.scrub(event)

    assert scrubbed["request"] == {
        "url": "https://inkwell.example/api/articles?access_token=[Filtered]&page=2",
        "query_string": "password=[Filtered]&api_key=[Filtered]&limit=20&sessionid=[Filtered]",
        "headers": {"Accept": "application/json"},
    }
    assert scrubbed["user"] == {"id": "7"}
    assert scrubbed["contexts"]["response"]["headers"] == {"Content-Type": "text/plain"}
    assert scrubbed["breadcrumbs"]["values"][0] == {
        "message": "GET /api/user?token=[Filtered]",
        "data": {"url": "http://x/?reset_token=[Filtered]&a=1"},
    }


async def test_without_a_dsn_nothing_is_initialised(database_url: str, engine: AsyncEngine) -> None:
    settings = test_settings(database_url)

    assert errors.configure_sentry(settings) is False
    assert not sentry_sdk.get_client().is_active()
    last_event = sentry_sdk.last_event_id()
    app = create_app(settings, engine=engine)
    add_failing_routes(app)
    assert not sentry_sdk.get_client().is_active()
    # A bug is still answered with the Conduit 500, and nothing is captured.
    async with app_client(app) as client:
        response = await post_boom(client)
    assert (response.status_code, response.json()) == (
        500,
        {"errors": {"server": ["an unexpected error occurred"]}},
    )
    assert not sentry_sdk.get_client().is_active()
    assert sentry_sdk.last_event_id() == last_event


def test_configuring_again_with_the_same_settings_keeps_the_client(
    receiver: SentryReceiver, database_url: str, engine: AsyncEngine
) -> None:
    settings = sentry_settings(database_url, receiver)

    assert errors.configure_sentry(settings) is True
    client = sentry_sdk.get_client()
    create_app(settings, engine=engine)
    create_app(settings, engine=engine)
    assert sentry_sdk.get_client() is client
    assert client.is_active()

    changed = test_settings(database_url, sentry_dsn=receiver.dsn, git_revision="def5678")
    assert errors.configure_sentry(changed) is True
    assert sentry_sdk.get_client() is not client
    assert client.transport is None  # the replaced client's sender was stopped, not leaked
    assert sentry_sdk.get_client().options["release"] == f"inkwell@{__version__}+def5678"
