"""Property-based contract test: schemathesis drives every operation of the app's own OpenAPI
document with generated valid and invalid input, and no answer is a 5xx or contradicts the schema."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from tests.conftest import PostgresServer
from tests.contract.checks import app_on_fresh_database, call_and_validate

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def contract_app(postgres: PostgresServer) -> Iterator[Any]:
    with app_on_fresh_database(postgres, "inkwell_contract") as app:
        yield app


@pytest.fixture(scope="module")
def auth_headers(contract_app: Any) -> dict[str, str]:
    from starlette.testclient import TestClient

    with TestClient(contract_app) as client:
        user = {"username": "contract", "email": "contract@example.org", "password": "contract-password"}
        response = client.post("/api/users", json={"user": user})
        assert response.status_code == 201, response.text
        token = response.json()["user"]["token"]
        article = {"title": "Contract article", "description": "d", "body": "b", "tagList": ["t"]}
        assert (
            client.post(
                "/api/articles", json={"article": article}, headers={"Authorization": f"Token {token}"}
            ).status_code
            == 201
        )
    return {"Authorization": f"Token {token}"}


@pytest.fixture(scope="module")
def api_schema(contract_app: Any) -> Any:
    return schemathesis.openapi.from_asgi("/openapi.json", contract_app)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_no_operation_answers_5xx_or_off_schema(case: Any, auth_headers: dict[str, str]) -> None:
    # Signed in, so operations that need a user reach their real logic instead of stopping at 401.
    has_auth = "authorization" in {key.lower() for key in (case.headers or {})}
    call_and_validate(case, {} if has_auth else auth_headers)


def test_openapi_document_is_served_and_names_every_conduit_operation(contract_app: Any) -> None:
    from starlette.testclient import TestClient

    with TestClient(contract_app) as client:
        document = client.get("/openapi.json").json()
    operation_ids = {op["operationId"] for path in document["paths"].values() for op in path.values()}
    conduit = {
        "Login", "CreateUser", "GetCurrentUser", "UpdateCurrentUser", "GetProfileByUsername",
        "FollowUserByUsername", "UnfollowUserByUsername", "GetArticlesFeed", "GetArticles", "CreateArticle",
        "GetArticle", "UpdateArticle", "DeleteArticle", "GetArticleComments", "CreateArticleComment",
        "DeleteArticleComment", "CreateArticleFavorite", "DeleteArticleFavorite", "GetTags",
    }  # fmt: skip
    assert conduit <= operation_ids
    assert httpx.URL("/api/token").path in {flow["tokenUrl"] for flow in [
        document["components"]["securitySchemes"]["OAuth2"]["flows"]["password"]
    ]}  # fmt: skip
