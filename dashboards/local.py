"""Inkwell and a real Prometheus on this machine, with the generated rules, so the dashboards' data
can be seen (and tested) without a cluster: the preview and the end-to-end tests run on it."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import yaml

from dashboards.generate import FILES


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def local_rule_files(directory: Path) -> list[Path]:
    """The generated rule files, with every group evaluated at the global interval: the SLO-period
    group runs every 5 minutes in production, too slow to see here."""
    paths = []
    for source in sorted((FILES / "rules").glob("*.yaml")):
        content = yaml.safe_load(source.read_text())
        for group in content["groups"]:
            group.pop("interval", None)
        path = directory / source.name
        path.write_text(yaml.safe_dump(content, sort_keys=False))
        paths.append(path)
    return paths


def _wait_until(
    ready: Any, process: subprocess.Popen[Any], what: str, log: Path, timeout: float = 60
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(httpx.HTTPError):
            if ready():
                return
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start:\n{log.read_text()[-4000:]}")
        time.sleep(0.2)


def _stop(process: subprocess.Popen[Any]) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextlib.contextmanager
def _running(
    what: str,
    argv: list[str],
    *,
    port: int,
    ready_path: str,
    workdir: Path,
    env: dict[str, str] | None = None,
) -> Iterator[str]:
    """Runs `argv` (a server on `port`, its log in `workdir`) until `ready_path` answers 200; yields
    its URL, then stops it and removes `workdir`."""
    log = workdir / f"{what}.log"
    with log.open("w") as output:
        process = subprocess.Popen(argv, env=env, stdout=output, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until(lambda: httpx.get(f"{url}{ready_path}", timeout=2).status_code == 200, process, what, log)
        yield url
    finally:
        _stop(process)
        shutil.rmtree(workdir, ignore_errors=True)


@contextlib.contextmanager
def prometheus(
    *,
    targets: Sequence[str],
    labels: dict[str, str] | None = None,
    rule_files: Sequence[Path] = (),
    scrape_interval: str = "1s",
    evaluation_interval: str = "1s",
) -> Iterator[str]:
    """Runs Prometheus (Debian's package) scraping `targets` (host:port, /metrics) with `labels` on
    every series and evaluating `rule_files`; yields its base URL."""
    binary = shutil.which("prometheus")
    if binary is None:
        raise RuntimeError("prometheus is not installed: scripts/bootstrap.sh --test installs it")
    workdir = Path(tempfile.mkdtemp(prefix="inkwell-prometheus-"))
    config = {
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": evaluation_interval},
        "rule_files": [str(path) for path in rule_files],
        "scrape_configs": [
            {
                "job_name": "inkwell",
                "scrape_timeout": scrape_interval,
                "static_configs": [{"targets": list(targets), "labels": labels or {}}],
            }
        ],
    }
    (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    argv = [
        binary,
        f"--config.file={workdir / 'prometheus.yml'}",
        f"--storage.tsdb.path={workdir / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--enable-feature=exemplar-storage",
    ]
    with _running("prometheus", argv, port=port, ready_path="/-/ready", workdir=workdir) as url:
        yield url


def query(url: str, expr: str, **params: Any) -> list[dict[str, Any]]:
    """An instant query (or a range query with start/end/step); raises on a PromQL error."""
    path = "query_range" if "step" in params else "query"
    response = httpx.get(f"{url}/api/v1/{path}", params={"query": expr, **params}, timeout=30)
    body = response.json()
    if body.get("status") != "success":
        raise ValueError(f"{expr!r}: {body.get('errorType')}: {body.get('error')}")
    return list(body["data"]["result"])


@contextlib.contextmanager
def inkwell(env: dict[str, str] | None = None) -> Iterator[str]:
    """`inkwell serve` on a fresh SQLite database (or the INKWELL_DATABASE_URL in `env`); yields its URL."""
    workdir = Path(tempfile.mkdtemp(prefix="inkwell-local-"))
    settings = {
        "INKWELL_DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'inkwell.db'}",
        "INKWELL_ENVIRONMENT": "development",
        "INKWELL_LOG_LEVEL": "warning",
    }
    environment = {**os.environ, **settings, **(env or {})}
    command = [sys.executable, "-m", "service"]
    subprocess.run([*command, "migrate"], env=environment, check=True, capture_output=True, timeout=120)
    port = free_port()
    argv = [*command, "serve", "--port", str(port)]
    with _running("inkwell", argv, port=port, ready_path="/healthz", workdir=workdir, env=environment) as url:
        yield url


def traffic(url: str, *, seconds: float, users: int = 3) -> int:
    """A little of everything a dashboard shows: sign-ups, logins (some refused), articles, comments,
    reads, unknown paths. Returns the number of requests sent."""
    sent = 0
    run = f"{time.time_ns():x}"
    with httpx.Client(base_url=url, timeout=30) as client:
        tokens = []
        for index in range(users):
            user = {
                "username": f"dash-{run}-{index}",
                "email": f"dash-{run}-{index}@example.com",
                "password": "password123",
            }
            client.post("/api/users", json={"user": user})
            login = client.post(
                "/api/users/login", json={"user": {"email": user["email"], "password": "password123"}}
            )
            tokens.append(login.json()["user"]["token"])
            sent += 2
        deadline = time.monotonic() + seconds
        round_ = 0
        while time.monotonic() < deadline:
            headers = {"Authorization": f"Token {tokens[round_ % users]}"}
            article = {
                "title": f"Dashboards {run} {round_}",
                "description": "d",
                "body": "b",
                "tagList": ["sre"],
            }
            slug = client.post("/api/articles", json={"article": article}, headers=headers).json()["article"][
                "slug"
            ]
            client.post(f"/api/articles/{slug}/comments", json={"comment": {"body": "c"}}, headers=headers)
            client.get(f"/api/articles/{slug}")
            client.get("/api/articles", params={"limit": 10})
            client.get("/api/articles/feed", headers=headers)
            client.get("/api/tags")
            client.post(
                "/api/users/login", json={"user": {"email": "nobody@example.com", "password": "password123"}}
            )
            client.get("/api/no-such-route")
            sent += 8
            round_ += 1
            time.sleep(0.05)
    return sent
