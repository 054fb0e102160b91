"""Inkwell and a real Prometheus on this machine, with the generated rules, so the dashboards' data
can be seen (and tested) without a cluster: the preview and the end-to-end tests run on it."""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import yaml

import launch
import launch.prometheus


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
    url = f"http://127.0.0.1:{port}"
    try:
        ready = launch.answers(f"{url}{ready_path}")
        with launch.running(
            argv, what=what, log=workdir / f"{what}.log", ready=ready, env=env, stop_timeout=20
        ):
            yield url
    finally:
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
    port = launch.free_port()
    argv = launch.prometheus.command(workdir / "prometheus.yml", data=workdir / "data", port=port)
    with _running("prometheus", argv, port=port, ready_path=launch.prometheus.READY, workdir=workdir) as url:
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
    launch.run([*command, "migrate"], env=environment, timeout=120)
    port = launch.free_port()
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
            created = client.post("/api/articles", json={"article": article}, headers=headers)
            # The writes policy (300 a minute per user) refuses some once a minute's writes add up
            # (429): the rate-limit panel shows it, and the round goes on with the reads.
            if created.status_code == 201:
                slug = created.json()["article"]["slug"]
                client.post(
                    f"/api/articles/{slug}/comments", json={"comment": {"body": "c"}}, headers=headers
                )
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
