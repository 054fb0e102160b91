"""The edge (service.edge, service.docs): security headers on every response, errors included; no
cache may store what carries a token or a user's data, while public reads stay cached; HSTS only
when configured; Host names refused in the Conduit format, probes exempt; the docs switch."""

from __future__ import annotations

import base64
import hashlib
import re

import httpx
import pytest

from service.observability.metrics import CACHE_LOOKUPS
from tests.api.conftest import ClientFactory
from tests.factories import create_article, create_user

pytestmark = pytest.mark.anyio

API_POLICY = "default-src 'none'; frame-ancestors 'none'"


def assert_security_headers(response: httpx.Response) -> None:
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["content-security-policy"] == API_POLICY
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "strict-transport-security" not in response.headers  # not configured
    assert "server" not in response.headers


async def test_every_kind_of_response_carries_the_security_headers(client: httpx.AsyncClient) -> None:
    responses = [
        await client.get("/api/tags"),
        await client.get("/api/articles/no-such-article"),  # 404
        await client.get("/no/such/route"),  # unmatched 404
        await client.post("/api/users", json={"user": {}}),  # 422
        await client.delete("/api/tags"),  # 405
        await client.post("/api/users", content=b"x" * (2 * 1024 * 1024)),  # 413, from a layer
        await client.options(  # a CORS preflight, answered by the CORS layer
            "/api/articles",
            headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST"},
        ),
        await client.get("/healthz"),
        await client.get("/openapi.json"),
        await client.get("/docs/static/swagger-ui-bundle.js"),
    ]
    for response in responses:
        assert_security_headers(response)
    assert [response.status_code for response in responses] == [
        200,
        404,
        404,
        422,
        405,
        413,
        200,
        200,
        200,
        200,
    ]


async def test_a_cache_hit_carries_the_security_headers_and_public_reads_stay_cached(
    client: httpx.AsyncClient,
) -> None:
    author = await create_user(client)
    article = await create_article(client, author)
    path = f"/api/articles/{article['slug']}"
    await client.get(path)
    hits = CACHE_LOOKUPS.labels("articles", "hit")._value.get()
    hit = await client.get(path)
    assert CACHE_LOOKUPS.labels("articles", "hit")._value.get() == hits + 1
    assert_security_headers(hit)
    # An anonymous public read may be kept by any cache: it says nothing about its reader.
    assert "no-store" not in hit.headers.get("cache-control", "")


async def test_whatever_carries_a_token_or_a_users_data_is_never_stored(client: httpx.AsyncClient) -> None:
    account = await create_user(client)
    signed_in = account.headers
    credentials = {"user": {"email": account.email, "password": account.password}}
    responses = {
        "registration": await client.post(
            "/api/users",
            json={
                "user": {"username": "nostore", "email": "nostore@example.org", "password": "a-long-password"}
            },
        ),
        "login": await client.post("/api/users/login", json=credentials),
        "token": await client.post(
            "/api/token", data={"username": account.email, "password": account.password}
        ),
        "current user": await client.get("/api/user", headers=signed_in),
        "current user, refused": await client.get("/api/user"),
        "admin, refused": await client.get("/api/admin/users", headers=signed_in),
        "signed-in list": await client.get("/api/articles", headers=signed_in),
        "signed-in profile": await client.get(f"/api/profiles/{account.username}", headers=signed_in),
        "signed-in miss": await client.get("/api/articles/no-such-article", headers=signed_in),
    }
    for what, response in responses.items():
        assert response.headers.get("cache-control") == "no-store", what
        assert_security_headers(response)
    assert responses["token"].status_code == 200, responses["token"].text
    assert responses["admin, refused"].status_code == 403


async def test_hsts_is_sent_only_when_configured(make_client: ClientFactory) -> None:
    async with make_client(hsts_seconds=31536000) as client:
        responses = [
            await client.get("/api/tags"),
            await client.get("/no/such/route"),
            await client.get("/docs"),
        ]
    for response in responses:
        assert response.headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"


async def test_the_docs_pages_have_their_own_policy_allowing_only_their_scripts(
    client: httpx.AsyncClient,
) -> None:
    for path in ("/docs", "/redoc", "/docs/oauth2-redirect"):
        page = await client.get(path)
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        policy = dict(
            directive.strip().split(" ", 1)
            for directive in page.headers["content-security-policy"].split(";")
        )
        assert policy["default-src"] == "'none'"
        assert policy["frame-ancestors"] == "'none'"
        assert "'unsafe-inline'" not in policy["script-src"]
        assert "http" not in page.headers["content-security-policy"]  # nothing from another origin
        # Every script the page loads is ours, and every inline one is allowed by its hash.
        assert "cdn" not in page.text
        for source in re.findall(r'<script src="([^"]+)"', page.text):
            assert source.startswith("/docs/static/")
            assert (await client.get(source)).status_code == 200
        for inline in re.findall(r"<script>(.*?)</script>", page.text, re.DOTALL):
            digest = base64.b64encode(hashlib.sha256(inline.encode()).digest()).decode()
            assert f"'sha256-{digest}'" in policy["script-src"].split()


async def test_the_docs_can_be_switched_off(make_client: ClientFactory) -> None:
    async with make_client(docs_enabled=False) as client:
        for path in (
            "/docs",
            "/redoc",
            "/openapi.json",
            "/docs/oauth2-redirect",
            "/docs/static/swagger-ui.css",
        ):
            response = await client.get(path)
            assert response.status_code == 404, path
            assert response.json() == {"errors": {"path": ["not found"]}}
        # The API itself is unchanged (its 405s still list every method of a path).
        assert (await client.get("/api/tags")).status_code == 200
        assert (await client.delete("/api/tags")).headers["allow"] == "GET"


async def test_a_host_not_allowed_is_refused_in_the_conduit_format(make_client: ClientFactory) -> None:
    async with make_client(allowed_hosts="api.example, *.inkwell.example") as client:
        allowed = await client.get("/api/tags", headers={"Host": "api.example"})
        wildcard = await client.get("/api/tags", headers={"Host": "eu.inkwell.example:443"})
        refused = await client.get("/api/tags", headers={"Host": "evil.example"})
        lookalike = await client.get("/api/tags", headers={"Host": "api.example.evil.example"})
        no_host = await client.get("/api/tags", headers={"Host": ""})
    assert (allowed.status_code, wildcard.status_code) == (200, 200)
    for response in (refused, lookalike, no_host):
        assert response.status_code == 400
        assert response.json() == {"errors": {"host": ["is not allowed"]}}
        assert response.headers["content-type"] == "application/json; charset=utf-8"
        assert_security_headers(response)


async def test_probes_answer_whatever_host_the_kubelet_sends(make_client: ClientFactory) -> None:
    async with make_client(allowed_hosts=["api.example"]) as client:
        # The kubelet sends the pod's IP and port as Host.
        health = await client.get("/healthz", headers={"Host": "10.244.1.17:8000"})
        ready = await client.get("/readyz", headers={"Host": "10.244.1.17:8000"})
        scrape = await client.get("/metrics", headers={"Host": "10.244.1.17:8000"})
        other = await client.get("/docs", headers={"Host": "10.244.1.17:8000"})
    assert (health.status_code, ready.status_code, scrape.status_code) == (200, 200, 200)
    assert other.status_code == 400


async def test_with_a_metrics_port_the_app_has_no_metrics_route(make_client: ClientFactory) -> None:
    async with make_client(metrics_port=9100) as client:
        response = await client.get("/metrics")
    assert response.status_code == 404
    assert response.json() == {"errors": {"path": ["not found"]}}
