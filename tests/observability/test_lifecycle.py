"""Probes and shutdown as Kubernetes drives them: liveness, readiness (database at the code's
migration head, not draining), and SIGTERM that finishes the request in flight, then exits 0."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from service.migrate import downgrade
from tests.support.server import INKWELL, running_server, server_env

pytestmark = pytest.mark.anyio


async def test_readyz_is_ok_when_the_database_is_at_head(client: httpx.AsyncClient) -> None:
    assert (await client.get("/readyz")).json() == {"status": "ok"}
    assert (await client.get("/healthz")).json() == {"status": "ok"}


def test_readyz_names_a_database_behind_the_code(tmp_path: Path) -> None:
    env = server_env(f"sqlite+aiosqlite:///{tmp_path / 'old.db'}")
    subprocess.run([*INKWELL, "migrate"], env=env, check=True, capture_output=True, timeout=120)
    downgrade(env["INKWELL_DATABASE_URL"], "base")
    with running_server(env, migrate_first=False) as server:
        ready = httpx.get(f"{server.url}/readyz", timeout=30)
        live = httpx.get(f"{server.url}/healthz", timeout=30)
    assert ready.status_code == 503
    assert list(ready.json()["errors"]) == ["migrations"]
    assert "inkwell migrate" in ready.json()["errors"]["migrations"][0]
    assert live.status_code == 200


def _send_head_of_slow_request(port: int, body: bytes) -> socket.socket:
    """A registration whose body arrives in two parts: the request is in flight until the second."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    head = (
        "POST /api/users HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    sock.sendall(head + body[:10])
    return sock


def test_sigterm_drains_then_finishes_the_request_in_flight_and_exits_zero() -> None:
    env = server_env(INKWELL_DRAIN_SECONDS="3", INKWELL_GRACEFUL_TIMEOUT_SECONDS="20")
    body = json.dumps(
        {"user": {"username": "inflight", "email": "inflight@example.org", "password": "inflight-pw"}}
    ).encode()
    with running_server(env) as server:
        assert httpx.get(f"{server.url}/readyz", timeout=30).status_code == 200
        sock = _send_head_of_slow_request(server.port, body)
        time.sleep(0.5)  # let the server start reading the request
        server.process.send_signal(signal.SIGTERM)
        # Draining: still serving, but no longer ready.
        deadline = time.monotonic() + 10
        ready = httpx.get(f"{server.url}/readyz", timeout=30)
        while ready.status_code == 200 and time.monotonic() < deadline:
            time.sleep(0.1)
            ready = httpx.get(f"{server.url}/readyz", timeout=30)
        assert ready.status_code == 503
        assert ready.json()["errors"]["process"] == ["shutting down"]
        # The request in flight completes after the signal, and is answered.
        sock.sendall(body[10:])
        response = b""
        while b"\r\n\r\n" not in response or not response.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            response += chunk
        sock.close()
        assert response.startswith(b"HTTP/1.1 201"), response
        assert b'"username":"inflight"' in response
        assert server.process.wait(timeout=60) == 0
