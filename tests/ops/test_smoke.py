"""`smoke` against a real `inkwell serve` and the staging stack: the user journey passes with each step's
status and latency, its comment arriving over /api/live too (through nginx's upgrade, as the chart's
live Ingress passes it); whether the internal endpoints are exposed is found by asking the URL (nginx
on loopback hides them, the service's own port serves the probes and keeps /metrics on its metrics
port); and a wrong expectation, a Host the service does not allow, a dead URL or an ingress that does
not upgrade WebSockets fails, naming the cause."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner, Result

from launch import free_port
from loadtests.staging import Stack, staging_stack
from ops.cli import app
from tests.support.server import CHEAP_ARGON2, ServerProcess, running_server, server_env

pytestmark = pytest.mark.slow

JOURNEY = ["register", "login", "publish", "read", "comment", "live", "delete", "gone"]


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    with running_server(server_env()) as process:
        yield process


@pytest.fixture(scope="module")
def ingress(server: ServerProcess) -> Iterator[str]:
    """A stand-in for the chart's API Ingress alone: it routes /api, /docs and /openapi.json, and 404s
    the rest; like a proxy without WebSocket settings, it drops the hop-by-hop Upgrade and Connection."""
    routed = ("/api", "/docs", "/openapi.json")

    class Proxy(BaseHTTPRequestHandler):
        def _forward(self) -> None:
            if not self.path.startswith(routed):
                body = b"<html><body>404 Not Found</body></html>"
                self.send_response(404)
            else:
                length = int(self.headers.get("Content-Length") or 0)
                dropped = ("host", "content-length", "upgrade", "connection")
                headers = {k: v for k, v in self.headers.items() if k.lower() not in dropped}
                upstream = httpx.request(
                    self.command,
                    server.url + self.path,
                    headers=headers,
                    content=self.rfile.read(length),
                    timeout=30,
                )
                body = upstream.content
                self.send_response(upstream.status_code)
                self.send_header("Content-Type", upstream.headers.get("content-type", "text/plain"))
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_DELETE = _forward  # noqa: N815 - http.server names its handlers so

        def log_message(self, *args: Any) -> None:
            pass

    proxy = ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{proxy.server_address[1]}"
    finally:
        proxy.shutdown()
        proxy.server_close()


def smoke(*args: str) -> Result:
    return CliRunner().invoke(app, ["smoke", *args])


def test_the_journey_passes_against_the_service_itself(server: ServerProcess) -> None:
    result = CliRunner().invoke(app, ["-o", "json", "smoke", server.url])
    assert result.exit_code == 0, result.stdout
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert report["internal"] == "exposed"  # loopback: the service itself, not an ingress
    steps = report["steps"]
    assert [s["name"] for s in steps] == ["/metrics served", "/healthz served", "/readyz served", *JOURNEY]
    assert [s["status"] for s in steps] == [200, 200, 200, 201, 200, 201, 200, 201, 101, 204, 404]
    assert all(s["ok"] and s["latency_ms"] > 0 for s in steps)
    live = next(s for s in steps if s["name"] == "live")
    assert (live["method"], live["path"], live["expected"]) == ("WS", "/api/live", "101")


def test_the_table_shows_each_step_with_status_and_latency(server: ServerProcess) -> None:
    result = smoke(server.url, "--internal", "skip")
    assert result.exit_code == 0, result.stdout
    lines = result.stdout.splitlines()
    for name in JOURNEY:
        (line,) = [line for line in lines if line.startswith(f"{name} ")]
        assert " ms " in line
        assert line.rstrip().endswith("ok")
    assert "all steps passed" in result.stdout
    assert "/metrics" not in result.stdout


def test_through_an_ingress_without_websockets_only_the_live_step_fails_and_names_the_cause(
    ingress: str,
) -> None:
    result = CliRunner().invoke(app, ["-o", "json", "smoke", ingress, "--internal", "hidden"])
    assert result.exit_code == 1, result.stdout
    report = json.loads(result.stdout)
    steps = report["steps"]
    assert [(s["name"], s["status"]) for s in steps[:3]] == [
        ("/metrics not published", 404),
        ("/healthz not published", 404),
        ("/readyz not published", 404),
    ]
    assert [s["name"] for s in steps[3:]] == JOURNEY
    assert [s["name"] for s in steps if not s["ok"]] == ["live"]
    live = next(s for s in steps if s["name"] == "live")
    assert live["status"] is None
    assert "did not upgrade /api/live to a WebSocket (HTTP " in live["detail"]
    assert "live Ingress" in live["detail"]
    assert "timeouts" in live["detail"]
    # The table says so too.
    table = smoke(ingress, "--internal", "hidden")
    assert "did not upgrade /api/live" in table.stdout.replace("\n", " ")


def test_the_websocket_client_is_imported_only_when_smoke_runs() -> None:
    # ops.views imports ops.smoke for its report type, and every command loads ops.views.
    script = "import sys, ops.cli, ops.views, ops.smoke; print('websocket' in sys.modules)"
    shown = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert shown.stdout.strip() == "False"


def test_expecting_hidden_internal_endpoints_fails_when_they_are_served(server: ServerProcess) -> None:
    code_and_steps = CliRunner().invoke(app, ["-o", "json", "smoke", server.url, "--internal", "hidden"])
    assert code_and_steps.exit_code == 1
    report = json.loads(code_and_steps.stdout)
    failed = [s for s in report["steps"] if not s["ok"]]
    assert [(s["name"], s["status"], s["expected"]) for s in failed] == [
        ("/metrics not published", 200, "404"),
        ("/healthz not published", 200, "404"),
        ("/readyz not published", 200, "404"),
    ]
    # The journey still ran, and passed.
    assert all(s["ok"] for s in report["steps"] if s["name"] in JOURNEY)


def test_a_url_where_nothing_listens_fails_every_step() -> None:
    result = CliRunner().invoke(
        app, ["-o", "json", "smoke", f"http://127.0.0.1:{free_port()}", "--timeout", "2"]
    )
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["ok"] is False
    register = next(s for s in report["steps"] if s["name"] == "register")
    assert register["status"] is None
    assert "ConnectError" in register["detail"]
    assert [s["detail"] for s in report["steps"] if s["name"] in ("publish", "read")] == [
        "skipped: no token"
    ] * 2


# --- the staging stack: nginx as the ingress, /metrics on a port of its own, INKWELL_ALLOWED_HOSTS ---


@pytest.fixture(scope="module")
def staging(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with staging_stack(
        tmp_path_factory.mktemp("staging"), services=1, pgbouncer=False, replica=False, env=CHEAP_ARGON2
    ) as stack:
        yield stack


def test_the_staging_stacks_loopback_url_is_found_to_be_an_ingress(staging: Stack) -> None:
    assert staging.url.startswith("http://127.0.0.1:")
    result = CliRunner().invoke(app, ["-o", "json", "smoke", staging.url])
    assert result.exit_code == 0, result.stdout
    report = json.loads(result.stdout)
    assert report["internal"] == "hidden"
    assert [(s["name"], s["status"], s["ok"]) for s in report["steps"][:3]] == [
        ("/metrics not published", 404, True),
        ("/healthz not published", 404, True),
        ("/readyz not published", 404, True),
    ]
    assert [s["name"] for s in report["steps"][3:]] == JOURNEY
    # nginx passes the upgrade on /api/live (the chart's live Ingress): the comment arrived over it.
    live = next(s for s in report["steps"] if s["name"] == "live")
    assert (live["status"], live["ok"]) == (101, True), live
    assert live["latency_ms"] > 0


def test_a_service_with_a_metrics_port_serves_the_probes_and_not_metrics(staging: Stack) -> None:
    (service,) = staging.service_urls
    result = CliRunner().invoke(app, ["-o", "json", "smoke", service])
    assert result.exit_code == 0, result.stdout
    report = json.loads(result.stdout)
    assert report["internal"] == "exposed"
    assert [(s["name"], s["status"], s["ok"]) for s in report["steps"][:3]] == [
        ("/metrics on its own port", 404, True),
        ("/healthz served", 200, True),
        ("/readyz served", 200, True),
    ]
    assert all(s["ok"] for s in report["steps"])


def test_a_host_the_service_does_not_allow_is_named_as_the_reason(staging: Stack) -> None:
    (service,) = staging.service_urls
    result = CliRunner().invoke(app, ["-o", "json", "smoke", service, "--host", "elsewhere.example.com"])
    assert result.exit_code == 1
    register = next(s for s in json.loads(result.stdout)["steps"] if s["name"] == "register")
    assert register["status"] == 400
    assert "'elsewhere.example.com' is not in the service's INKWELL_ALLOWED_HOSTS" in register["detail"]
