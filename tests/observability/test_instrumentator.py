"""Our HTTP metrics are prometheus-fastapi-instrumentator's, series for series: the same requests to
Inkwell as it ships and to Inkwell with the instrumentator as its metrics layer (bench/instrumentator.py,
what `bench.metrics_layer` weighs ours against) scrape to the same names, labels and label values, so
dashboards written for the instrumentator work on ours, and the benchmark compares like with like."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from launch import free_port, listening, running
from tests.support.server import INKWELL, migrate, server_env

ROOT = Path(__file__).resolve().parents[2]
Series = frozenset[tuple[str, str]]


def http_series(scrape: str) -> dict[str, set[Series]]:
    """Every HTTP sample of a scrape: sample name -> its label sets (bucket bounds left out: both
    layers are given the same buckets, and the bounds are checked apart)."""
    found: dict[str, set[Series]] = {}
    for family in text_string_to_metric_families(scrape):
        for sample in family.samples:
            if sample.name.startswith("http_") and not sample.name.endswith("_created"):
                labels = frozenset((k, v) for k, v in sample.labels.items() if k != "le")
                found.setdefault(sample.name, set()).add(labels)
    return found


def bucket_bounds(scrape: str) -> set[str]:
    return {
        sample.labels["le"]
        for family in text_string_to_metric_families(scrape)
        for sample in family.samples
        if sample.name == "http_request_duration_seconds_bucket"
    }


@contextlib.contextmanager
def served(argv: list[str], directory: Path) -> Iterator[str]:
    """`argv` serving a database of its own (so each scrape counts only its own requests)."""
    env = server_env(f"sqlite+aiosqlite:///{directory / 'inkwell.db'}")
    migrate(env)
    port = free_port()
    log = directory / "server.log"
    with running(
        [*argv, "--port", str(port)],
        what=" ".join(argv[1:3]),
        log=log,
        ready=listening(port),
        env=env,
        cwd=ROOT,
    ):
        yield f"http://127.0.0.1:{port}"


def traffic(url: str) -> str:
    """The same mix against either server, then its scrape: matched and unmatched routes, a 404 of a
    matched route, a 405, a 422, a probe, a scrape (never counted) and a signed-in write."""
    with httpx.Client(base_url=url, timeout=30) as client:
        user = {"username": "jake", "email": "jake@example.org", "password": "jakejakejake"}
        token = client.post("/api/users", json={"user": user}).json()["user"]["token"]
        headers = {"Authorization": f"Token {token}"}
        article = {"title": "Metrics", "description": "d", "body": "b"}
        slug = client.post("/api/articles", json={"article": article}, headers=headers).json()["article"][
            "slug"
        ]
        for path in (
            "/api/tags",
            "/api/articles",
            f"/api/articles/{slug}",
            "/api/articles/nowhere",
            "/nowhere",
        ):
            client.get(path)
        client.post("/api/tags")
        client.get("/api/articles?limit=0")
        client.get("/healthz")
        client.get("/metrics")
        return client.get("/metrics").text


def test_ours_and_the_instrumentators_scrapes_hold_the_same_series(tmp_path: Path) -> None:
    (tmp_path / "ours").mkdir()
    (tmp_path / "theirs").mkdir()
    with served([*INKWELL, "serve"], tmp_path / "ours") as url:
        ours = traffic(url)
    instrumented = [sys.executable, "-m", "bench.serve", "--app", "bench.instrumentator:create_app"]
    with served(instrumented, tmp_path / "theirs") as url:
        theirs = traffic(url)
    # The same families, the same label names and the same label values, sample for sample.
    assert http_series(ours) == http_series(theirs)
    assert bucket_bounds(ours) == bucket_bounds(theirs)
    # And they say what was asked: not an empty match.
    requests = http_series(ours)["http_requests_total"]
    assert frozenset({("method", "GET"), ("handler", "/api/articles/{slug}"), ("status", "4xx")}) in requests
    assert frozenset({("method", "GET"), ("handler", "none"), ("status", "4xx")}) in requests
    assert not any(("handler", "/metrics") in labels for labels in requests)
    assert http_series(ours)["http_requests_inprogress"] == {frozenset()}
