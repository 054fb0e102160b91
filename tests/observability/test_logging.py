"""Logs: one JSON object per stdout line for everything, request ids, one access line per request,
and secrets that never reach the output; in-process where the app decides, in a real `inkwell serve`
where the process does (uvicorn's lines, the supervisor, stdout itself)."""

from __future__ import annotations

import contextlib
import json
import logging
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
from fastapi import FastAPI
from opentelemetry.sdk.trace import TracerProvider
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from launch import free_port, wait_for_port
from service.main import create_app
from service.models import User
from tests.conftest import on_test_transaction, test_settings
from tests.factories import create_article, create_user
from tests.support.asgi import asgi_client
from tests.support.logcapture import access_lines, json_lines, preserved_logging
from tests.support.server import INKWELL, migrate, server_env

pytestmark = pytest.mark.anyio

GENERATED_ID = re.compile(r"[0-9a-f]{32}")
CONDUIT_500 = {"errors": {"server": ["an unexpected error occurred"]}}
# Distinctive, so finding one anywhere in the output can only mean it leaked.
PASSWORD = "Quokka-Zebra-Password-7731"
COOKIE_VALUE = "sess-9f3c1d7e-cookie-value-5b1a"


class Output:
    """What the test process wrote to stdout so far (the log handler writes to the current sys.stdout)."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys = capsys
        self.text = ""

    def read(self) -> str:
        self.text += self.capsys.readouterr().out
        return self.text

    def lines(self) -> list[dict[str, Any]]:
        return json_lines(self.read())


@pytest.fixture
def output(capsys: pytest.CaptureFixture[str]) -> Iterator[Output]:
    with preserved_logging():
        yield Output(capsys)


MakeClient = Callable[..., httpx.AsyncClient]


@pytest.fixture
async def make_client(
    database_url: str,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    output: Output,
) -> AsyncIterator[MakeClient]:
    """An app built with the given settings overrides (and extra routes), called from `peer`."""
    clients: list[httpx.AsyncClient] = []

    def make(
        *, peer: str = "127.0.0.1", routes: Callable[[FastAPI], None] | None = None, **overrides: Any
    ) -> httpx.AsyncClient:
        app = create_app(test_settings(database_url, **overrides), engine=engine)
        on_test_transaction(app, sessionmaker)
        if routes is not None:
            routes(app)
        client = asgi_client(app, raise_app_exceptions=False, client=(peer, 40000))
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


def assert_iso_utc(timestamp: str) -> None:
    parsed = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    assert parsed.utcoffset() == timedelta(0)
    assert abs(datetime.now(parsed.tzinfo) - parsed) < timedelta(minutes=10)


def assert_duration(line: dict[str, Any]) -> None:
    duration = line["duration_ms"]
    assert isinstance(duration, float)
    assert 0 <= duration < 60_000
    assert round(duration, 2) == duration


# In-process: what the app decides.


async def test_access_line_names_the_route_template_the_user_and_every_field(
    make_client: MakeClient, output: Output, db: AsyncSession
) -> None:
    client = make_client()
    author = await create_user(client)
    article = await create_article(client, author)
    response = await client.get(f"/api/articles/{article['slug']}", headers=author.headers)
    assert response.status_code == 200
    user_id = await db.scalar(select(User.id).where(User.username == author.username))

    request_id = response.headers["x-request-id"]
    [line] = access_lines(output.lines(), request_id)
    assert_duration(line)
    assert_iso_utc(line.pop("timestamp"))
    del line["duration_ms"]
    assert line == {
        "event": "request",
        "level": "info",
        "logger": "inkwell.access",
        "method": "GET",
        "route": "/api/articles/{slug}",
        "path": f"/api/articles/{article['slug']}",
        "status": 200,
        "bytes": len(response.content),
        "client": "127.0.0.1",
        "user_id": user_id,
        "request_id": request_id,
    }


async def test_a_path_no_route_matches_is_one_404_line_with_the_unmatched_route(
    make_client: MakeClient, output: Output
) -> None:
    client = make_client()
    response = await client.get("/api/no/such/thing")
    assert response.status_code == 404
    [line] = access_lines(output.lines(), response.headers["x-request-id"])
    assert (line["route"], line["path"], line["status"], line["bytes"]) == (
        "<unmatched>",
        "/api/no/such/thing",
        404,
        len(response.content),
    )
    assert "user_id" not in line


@pytest.mark.parametrize(
    ("sent", "echoed"),
    [
        ("edge-7f3a.b:c_d-1", True),
        ("x" * 128, True),
        ("x" * 129, False),
        ("has space", False),
        ("<script>", False),
        ("", False),
    ],
)
async def test_a_sane_request_id_is_echoed_and_any_other_replaced(
    make_client: MakeClient, output: Output, sent: str, echoed: bool
) -> None:
    client = make_client()
    response = await client.get("/api/tags", headers={"X-Request-ID": sent})
    returned = response.headers["x-request-id"]
    if echoed:
        assert returned == sent
    else:
        assert GENERATED_ID.fullmatch(returned)
    assert len(access_lines(output.lines(), returned)) == 1
    assert response.headers.get_list("x-request-id") == [returned]


async def test_without_a_request_id_each_request_gets_a_new_one(
    make_client: MakeClient, output: Output
) -> None:
    client = make_client()
    ids = [(await client.get("/api/tags")).headers["x-request-id"] for _ in range(3)]
    assert all(GENERATED_ID.fullmatch(request_id) for request_id in ids)
    assert len(set(ids)) == 3
    assert [line["request_id"] for line in access_lines(output.lines())] == ids


async def test_every_kind_of_response_carries_the_request_id_and_one_access_line(
    make_client: MakeClient, output: Output
) -> None:
    def boom_route(app: FastAPI) -> None:
        @app.get("/boom")
        async def boom() -> None:
            raise RuntimeError("boom")

    client = make_client(routes=boom_route, cors_origins=["https://app.example.org"])
    preflight = {"Origin": "https://app.example.org", "Access-Control-Request-Method": "POST"}
    responses = {
        "not found": await client.get("/nope"),
        "preflight": await client.options("/api/articles", headers=preflight),
        "too large": await client.post("/api/users", content=b"x" * 2_000_000),
        "unauthorized": await client.get("/api/user"),
        "error": await client.get("/boom"),
    }
    statuses = {name: response.status_code for name, response in responses.items()}
    assert statuses == {
        "not found": 404,
        "preflight": 200,
        "too large": 413,
        "unauthorized": 401,
        "error": 500,
    }
    lines = output.lines()
    for name, response in responses.items():
        [line] = access_lines(lines, response.headers["x-request-id"])
        assert line["status"] == response.status_code, name
        assert line["bytes"] == len(response.content), name


async def test_lines_a_request_emits_carry_its_request_id(make_client: MakeClient, output: Output) -> None:
    def chatty_route(app: FastAPI) -> None:
        @app.get("/chatty")
        async def chatty() -> dict[str, str]:
            structlog.get_logger("tests.chatty").info("structlog inside", step=1)
            logging.getLogger("tests.chatty.stdlib").warning("stdlib inside %s", "the request")
            return {"ok": "yes"}

    client = make_client(routes=chatty_route)
    response = await client.get("/chatty", headers={"X-Request-ID": "ingress-42"})
    structlog.get_logger("tests.chatty").info("after the request")

    by_event = {line["event"]: line for line in output.lines()}
    assert by_event["structlog inside"]["request_id"] == "ingress-42"
    assert by_event["structlog inside"]["step"] == 1
    assert by_event["stdlib inside the request"]["request_id"] == "ingress-42"
    assert by_event["stdlib inside the request"]["level"] == "warning"
    assert by_event["stdlib inside the request"]["logger"] == "tests.chatty.stdlib"
    assert "request_id" not in by_event["after the request"]
    assert response.headers["x-request-id"] == "ingress-42"


async def test_lines_of_a_traced_request_carry_the_trace_and_span_ids(
    make_client: MakeClient, output: Output
) -> None:
    def traced_route(app: FastAPI) -> None:
        @app.get("/traced")
        async def traced() -> dict[str, str]:
            structlog.get_logger("tests.traced").info("inside a span")
            return {"ok": "yes"}

    client = make_client(routes=traced_route)
    # A provider of the test's own, not the global one: the app sees the span through the context.
    tracer = TracerProvider().get_tracer("tests")
    with tracer.start_as_current_span("upstream") as span:
        response = await client.get("/traced")
    context = span.get_span_context()
    ids = {"trace_id": format(context.trace_id, "032x"), "span_id": format(context.span_id, "016x")}

    lines = output.lines()
    [access] = access_lines(lines, response.headers["x-request-id"])
    [inside] = [line for line in lines if line["event"] == "inside a span"]
    assert {key: access[key] for key in ids} == ids
    assert {key: inside[key] for key in ids} == ids


async def test_an_unhandled_error_logs_one_traceback_line_and_answers_the_conduit_500(
    make_client: MakeClient, output: Output
) -> None:
    def failing_route(app: FastAPI) -> None:
        @app.get("/fails/{item}")
        async def fails(item: str) -> None:
            raise RuntimeError(f"marker-e41 for {item}")

    client = make_client(routes=failing_route)
    response = await client.get("/fails/abc")
    assert response.status_code == 500
    assert response.json() == CONDUIT_500
    request_id = response.headers["x-request-id"]

    lines = output.lines()
    [error] = [line for line in lines if "exception" in line]
    assert error["level"] == "error"
    assert error["logger"] == "service.errors"
    assert error["event"] == "unhandled error on GET /fails/abc"
    assert error["request_id"] == request_id
    assert error["exception"].startswith("Traceback (most recent call last):")
    assert error["exception"].rstrip().endswith("RuntimeError: marker-e41 for abc")
    [access] = access_lines(lines, request_id)
    assert (access["status"], access["route"]) == (500, "/fails/{item}")


@pytest.mark.parametrize(
    ("peer", "trusted", "forwarded_for", "client_address"),
    [
        ("127.0.0.1", ["127.0.0.1"], "203.0.113.9", "203.0.113.9"),
        # Right-most address that is not a proxy of ours; what the client put on the left is not believed.
        ("10.1.2.3", ["10.0.0.0/8"], "198.51.100.1, 203.0.113.9, 10.9.9.9", "203.0.113.9"),
        ("10.1.2.3", ["10.0.0.0/8"], "203.0.113.9:5123", "203.0.113.9"),
        ("10.1.2.3", ["10.0.0.0/8"], "10.0.0.7", "10.0.0.7"),
        ("192.0.2.50", ["10.0.0.0/8"], "203.0.113.9", "192.0.2.50"),
        ("127.0.0.1", ["10.0.0.0/8"], "203.0.113.9", "127.0.0.1"),
    ],
)
async def test_x_forwarded_for_is_believed_only_from_trusted_proxies(
    make_client: MakeClient,
    output: Output,
    peer: str,
    trusted: list[str],
    forwarded_for: str,
    client_address: str,
) -> None:
    client = make_client(peer=peer, trusted_proxies=trusted)
    response = await client.get("/api/tags", headers={"X-Forwarded-For": forwarded_for})
    [line] = access_lines(output.lines(), response.headers["x-request-id"])
    assert line["client"] == client_address


async def test_probes_and_scrapes_are_logged_at_debug_only(make_client: MakeClient, output: Output) -> None:
    quiet = make_client(log_level="INFO")
    for path in ("/healthz", "/metrics"):
        assert (await quiet.get(path)).status_code == 200
    assert access_lines(output.lines()) == []

    verbose = make_client(log_level="DEBUG")
    health = await verbose.get("/healthz")
    [line] = access_lines(output.lines(), health.headers["x-request-id"])
    assert (line["level"], line["route"], line["status"]) == ("debug", "/healthz", 200)


async def test_passwords_tokens_and_cookies_never_reach_the_output(
    make_client: MakeClient, output: Output
) -> None:
    leaked: dict[str, str] = {}

    def careless_routes(app: FastAPI) -> None:
        @app.get("/careless")
        async def careless() -> None:
            jwt = leaked["jwt"]
            structlog.get_logger("tests.careless").info(
                "careless",
                password=PASSWORD,
                headers={"Authorization": f"Token {jwt}", "Cookie": f"session={COOKIE_VALUE}"},
                asgi_headers=[
                    (b"authorization", f"Token {jwt}".encode()),
                    (b"cookie", COOKIE_VALUE.encode()),
                ],
                note=f"retry with token={jwt} and password: {PASSWORD}",
                url=f"postgresql://inkwell:{PASSWORD}@db/inkwell",
            )
            logging.getLogger("tests.careless").warning("Authorization: Token %s", jwt)
            raise RuntimeError(f"bad credentials password={PASSWORD} cookie={COOKIE_VALUE} jwt {jwt}")

    client = make_client(routes=careless_routes, log_level="DEBUG")
    account = await create_user(client, password=PASSWORD)
    login = await client.post(
        "/api/users/login", json={"user": {"email": account.email, "password": PASSWORD}}
    )
    assert login.status_code == 200
    jwt = login.json()["user"]["token"]
    leaked["jwt"] = jwt
    secret_headers = {"Authorization": f"Token {jwt}", "Cookie": f"session={COOKIE_VALUE}"}
    assert (await client.get("/api/user", headers=secret_headers)).status_code == 200
    assert (await client.get(f"/api/articles?token={jwt}", headers=secret_headers)).status_code == 200
    assert (await client.get("/careless", headers=secret_headers)).status_code == 500

    text = output.read()
    for secret in (PASSWORD, jwt, COOKIE_VALUE, jwt.split(".")[2]):
        assert secret not in text
    lines = json_lines(text)
    [careless] = [line for line in lines if line["event"] == "careless"]
    assert careless["password"] == "[REDACTED]"
    assert careless["headers"] == {"Authorization": "[REDACTED]", "Cookie": "[REDACTED]"}
    assert careless["url"] == "postgresql://inkwell:[REDACTED]@db/inkwell"
    assert "exception" in next(line for line in lines if line["logger"] == "service.errors")
    assert len(access_lines(lines)) == 5  # register, login, user, articles, careless


async def test_console_format_prints_human_lines(make_client: MakeClient, output: Output) -> None:
    client = make_client(log_format="console")
    response = await client.get("/api/tags")
    structlog.get_logger("tests.console").info("console check", answer=42)

    lines = [line for line in output.read().splitlines() if line.strip()]
    for line in lines:
        with pytest.raises(json.JSONDecodeError):
            json.loads(line)
    [check] = [line for line in lines if "console check" in line]
    assert "answer=42" in check
    assert "info" in check
    [access] = [line for line in lines if response.headers["x-request-id"] in line]
    assert "route=/api/tags" in access
    assert "status=200" in access


async def test_configuring_again_keeps_one_handler_and_one_line_per_event(
    make_client: MakeClient, output: Output
) -> None:
    for _ in range(3):
        make_client()
    handlers = [handler for handler in logging.getLogger().handlers if handler.get_name() == "inkwell-stdout"]
    assert len(handlers) == 1
    structlog.get_logger("tests.once").info("exactly once")
    logging.getLogger("uvicorn.error").info("uvicorn exactly once")
    events = [line["event"] for line in output.lines()]
    assert events.count("exactly once") == 1
    assert events.count("uvicorn exactly once") == 1


def test_python_warnings_become_json_log_lines(tmp_path: Path) -> None:
    # Its own process: pytest records warnings itself, and the warnings hook is process-wide.
    script = (
        "from service.config import Settings\n"
        "from service.observability.logging import configure_logging\n"
        "from sqlalchemy import util\n"
        "configure_logging(Settings())\n"
        "util.warn('marker-w7 implicit cartesian product')\n"
    )
    env = server_env(f"sqlite+aiosqlite:///{tmp_path / 'w.db'}")
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120, check=True
    )
    [line] = json_lines(result.stdout)
    assert line["logger"] == "py.warnings"
    assert line["level"] == "warning"
    assert "SAWarning: marker-w7 implicit cartesian product" in line["event"]
    assert result.stderr == ""


UVICORN_WITH_A_FAILING_ROUTE = """
import sys, threading, time
import httpx, uvicorn
from service.main import create_app

app = create_app()

@app.get("/fails")
async def fails() -> None:
    raise RuntimeError("marker-u9")

port = int(sys.argv[1])
server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False))
thread = threading.Thread(target=server.run)
thread.start()
while not server.started:
    time.sleep(0.05)
response = httpx.get(f"http://127.0.0.1:{port}/fails", timeout=30)
server.should_exit = True
thread.join()
print(response.status_code, response.text, file=sys.stderr)
"""


def test_an_error_the_app_answered_is_logged_once_not_again_by_uvicorn(tmp_path: Path) -> None:
    # uvicorn logs what Starlette re-raises after answering; its own process, with a route that fails.
    env = server_env(f"sqlite+aiosqlite:///{tmp_path / 'u.db'}")
    migrate(env)
    result = subprocess.run(
        [sys.executable, "-c", UVICORN_WITH_A_FAILING_ROUTE, str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert result.stderr == f"500 {json.dumps(CONDUIT_500, separators=(',', ':'))}\n"
    lines = json_lines(result.stdout)
    [error] = [line for line in lines if "marker-u9" in json.dumps(line)]
    assert error["logger"] == "service.errors"
    assert error["exception"].rstrip().endswith("RuntimeError: marker-u9")
    assert [line["status"] for line in access_lines(lines)] == [500]
    assert "Exception in ASGI application" not in result.stdout


# A real `inkwell serve`: what the process decides.


@dataclass
class Served:
    process: subprocess.Popen[str]
    port: int
    database: Path
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def lines(self) -> list[dict[str, Any]]:
        return json_lines("".join(self.stdout))

    def access_line(self, request_id: str) -> dict[str, Any]:
        """The one access line of a request; the server writes it after answering, so wait for it."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            found = access_lines(self.lines(), request_id)
            if found:
                time.sleep(0.2)  # a second line for the same request would arrive just as soon
                found = access_lines(self.lines(), request_id)
                assert len(found) == 1, found
                return found[0]
            time.sleep(0.05)
        raise AssertionError(f"no access line for {request_id}:\n{''.join(self.stdout)}")


@contextlib.contextmanager
def serve(tmp_path: Path, *, workers: int = 1, **settings: str) -> Iterator[Served]:
    database = tmp_path / "inkwell.db"
    env = server_env(f"sqlite+aiosqlite:///{database}", **settings)
    migrate(env)
    port = free_port()
    process = subprocess.Popen(
        [*INKWELL, "serve", "--port", str(port), "--workers", str(workers)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    served = Served(process=process, port=port, database=database)
    assert process.stdout is not None
    assert process.stderr is not None
    readers = [
        threading.Thread(target=lambda: served.stdout.extend(iter(process.stdout.readline, "")), daemon=True),
        threading.Thread(target=lambda: served.stderr.extend(iter(process.stderr.readline, "")), daemon=True),
    ]
    for reader in readers:
        reader.start()
    try:
        wait_for_port(port, timeout=60)
        yield served
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for reader in readers:
            reader.join(timeout=10)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve(tmp_path_factory.mktemp("served"), INKWELL_LOG_LEVEL="DEBUG") as server:
        yield server


def register(http: httpx.Client, username: str, password: str = PASSWORD) -> str:
    user = {"username": username, "email": f"{username}@example.org", "password": password}
    response = http.post("/api/users", json={"user": user})
    assert response.status_code == 201, response.text
    return str(response.json()["user"]["token"])


def test_served_access_line_names_the_route_template_and_the_user(served: Served) -> None:
    with httpx.Client(base_url=served.url, timeout=30) as http:
        token = register(http, "templated")
        article = {"title": "Logged Article", "description": "d", "body": "b"}
        created = http.post(
            "/api/articles", json={"article": article}, headers={"Authorization": f"Token {token}"}
        )
        slug = created.json()["article"]["slug"]
        response = http.get(f"/api/articles/{slug}", headers={"Authorization": f"Token {token}"})
    assert response.status_code == 200
    with sqlite3.connect(served.database) as conn:
        user_id = conn.execute("SELECT id FROM users WHERE username = 'templated'").fetchone()[0]

    line = served.access_line(response.headers["x-request-id"])
    assert_duration(line)
    assert_iso_utc(line["timestamp"])
    assert {key: line[key] for key in ("event", "level", "logger", "method", "route", "path", "status")} == {
        "event": "request",
        "level": "info",
        "logger": "inkwell.access",
        "method": "GET",
        "route": "/api/articles/{slug}",
        "path": f"/api/articles/{slug}",
        "status": 200,
    }
    assert (line["bytes"], line["client"], line["user_id"]) == (len(response.content), "127.0.0.1", user_id)


def test_served_unmatched_path_is_one_404_line(served: Served) -> None:
    response = httpx.get(f"{served.url}/definitely/not/here", timeout=30)
    assert response.status_code == 404
    line = served.access_line(response.headers["x-request-id"])
    assert (line["route"], line["path"], line["status"]) == ("<unmatched>", "/definitely/not/here", 404)
    assert "user_id" not in line


def test_served_request_id_is_echoed_when_sane_replaced_when_not_and_generated_otherwise(
    served: Served,
) -> None:
    with httpx.Client(base_url=served.url, timeout=30) as http:
        sane = http.get("/api/tags", headers={"X-Request-ID": "lb-0a1b.2c:3d_4"})
        insane = http.get("/api/tags", headers={"X-Request-ID": "drop table;" + "x" * 200})
        absent = http.get("/api/tags")
    assert sane.headers["x-request-id"] == "lb-0a1b.2c:3d_4"
    assert GENERATED_ID.fullmatch(insane.headers["x-request-id"])
    assert GENERATED_ID.fullmatch(absent.headers["x-request-id"])
    assert insane.headers["x-request-id"] != absent.headers["x-request-id"]
    for response in (sane, insane, absent):
        assert served.access_line(response.headers["x-request-id"])["path"] == "/api/tags"
    assert "drop table;" not in "".join(served.stdout)


def test_served_x_forwarded_for_is_believed_only_from_a_trusted_peer(served: Served) -> None:
    forwarded = {"X-Forwarded-For": "203.0.113.77"}
    # 127.0.0.1 is a trusted proxy by default; 127.0.0.2 is loopback too, but not trusted.
    trusted = httpx.get(f"{served.url}/api/tags", headers=forwarded, timeout=30)
    with httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2"), timeout=30) as http:
        untrusted = http.get(f"{served.url}/api/tags", headers=forwarded)
    assert served.access_line(trusted.headers["x-request-id"])["client"] == "203.0.113.77"
    assert served.access_line(untrusted.headers["x-request-id"])["client"] == "127.0.0.2"


def test_served_probes_are_logged_at_debug(served: Served) -> None:
    response = httpx.get(f"{served.url}/readyz", timeout=30)
    assert response.status_code == 200
    line = served.access_line(response.headers["x-request-id"])
    assert (line["level"], line["route"], line["status"]) == ("debug", "/readyz", 200)


def test_served_output_is_json_from_start_to_stop_and_never_holds_a_secret(tmp_path: Path) -> None:
    # Two workers, so the supervisor's own lines are in the output too; DEBUG and SQL echo, so that
    # as much as possible is.
    with serve(tmp_path, workers=2, INKWELL_LOG_LEVEL="DEBUG", INKWELL_DB_ECHO="true") as server:
        request_ids: list[str] = []
        with httpx.Client(base_url=server.url, timeout=30) as http:
            token = register(http, "secretive")
            login = {"user": {"email": "secretive@example.org", "password": PASSWORD}}
            logged_in = http.post("/api/users/login", json=login)
            wrong = http.post(
                "/api/users/login", json={"user": {**login["user"], "password": PASSWORD + "x"}}
            )
            secret_headers = {"Authorization": f"Token {token}", "Cookie": f"session={COOKIE_VALUE}"}
            user = http.get("/api/user", headers=secret_headers)
            articles = http.get(f"/api/articles?token={token}", headers=secret_headers)
            for response in (logged_in, wrong, user, articles):
                request_ids.append(response.headers["x-request-id"])
        assert (logged_in.status_code, user.status_code, articles.status_code) == (200, 200, 200)
        assert wrong.status_code in (401, 403, 422)
        for request_id in request_ids:
            server.access_line(request_id)
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=60) == 0

    stdout = "".join(server.stdout)
    lines = json_lines(stdout)
    assert server.stderr == []
    events = [(line["logger"], line["event"]) for line in lines]
    assert ("uvicorn.error", f"Started parent process [{server.process.pid}]") in events
    assert events.count(("uvicorn.error", "Application startup complete.")) == 2
    assert events.count(("uvicorn.error", "Application shutdown complete.")) == 2
    assert all({"timestamp", "level", "logger", "event"} <= line.keys() for line in lines)
    assert any(line["logger"] == "sqlalchemy.engine.Engine" for line in lines)
    # One access line per request: register and the four above.
    assert len(access_lines(lines)) == 5
    for secret in (PASSWORD, token, token.split(".")[2], COOKIE_VALUE):
        assert secret not in stdout
