"""Conformance to the RealWorld contract itself: schemathesis drives the app with cases generated
from Conduit's own openapi.yml (vendored in conduit/, MIT), not from our reading of it, so a field,
status code or shape that differs from what Conduit clients expect fails here."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from tests.conftest import PostgresServer
from tests.contract.checks import app_on_fresh_database, call_and_validate

pytestmark = pytest.mark.slow

CONDUIT_SPEC = Path(__file__).parent / "conduit" / "openapi.yml"


@pytest.fixture(scope="module")
def conduit_app(postgres: PostgresServer) -> Iterator[Any]:
    with app_on_fresh_database(postgres, "inkwell_conduit") as app:
        yield app


@pytest.fixture(scope="module")
def signed_in(conduit_app: Any) -> dict[str, str]:
    from starlette.testclient import TestClient

    with TestClient(conduit_app) as client:
        user = {"username": "conduit", "email": "conduit@example.org", "password": "conduit-password"}
        token = client.post("/api/users", json={"user": user}).json()["user"]["token"]
    return {"Authorization": f"Token {token}"}


@pytest.fixture(scope="module")
def conduit_schema(conduit_app: Any) -> Any:
    schema = schemathesis.openapi.from_path(CONDUIT_SPEC)
    schema.app = conduit_app
    return schema


schema = schemathesis.pytest.from_fixture("conduit_schema")


@schema.parametrize()
@settings(max_examples=30, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_every_conduit_operation_answers_as_the_contract_says(case: Any, signed_in: dict[str, str]) -> None:
    call_and_validate(case, signed_in if case.operation.definition.raw.get("security") else {})
