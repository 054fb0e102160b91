"""The Conduit error format, `{"errors": {"field": ["message"]}}`, for every failure a client can cause.

Domain code raises the exceptions below; the handlers turn them, FastAPI's own validation errors,
unknown routes, malformed bodies and database outages into that format, never a stack trace.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

logger = logging.getLogger(__name__)

JSON_MEDIA_TYPE = "application/json; charset=utf-8"


class ErrorBody(BaseModel):
    """The Conduit error document, for the OpenAPI responses."""

    errors: dict[str, list[str]]


class ConduitError(Exception):
    status_code = 400

    def __init__(self, errors: Mapping[str, Sequence[str]], *, headers: dict[str, str] | None = None):
        super().__init__(errors)
        self.errors = {key: list(messages) for key, messages in errors.items()}
        self.headers = headers


class Unauthorized(ConduitError):
    status_code = 401

    def __init__(self, message: str = "is missing", *, field: str = "token") -> None:
        super().__init__({field: [message]}, headers={"WWW-Authenticate": "Token"})


class Forbidden(ConduitError):
    status_code = 403

    def __init__(self, resource: str, message: str = "forbidden") -> None:
        super().__init__({resource: [message]})


class NotFound(ConduitError):
    status_code = 404

    def __init__(self, resource: str, message: str = "not found") -> None:
        super().__init__({resource: [message]})


class Conflict(ConduitError):
    status_code = 409

    def __init__(self, errors: Mapping[str, Sequence[str]]) -> None:
        super().__init__(errors)


class Unprocessable(ConduitError):
    status_code = 422


class ServiceUnavailable(ConduitError):
    status_code = 503

    def __init__(self, dependency: str, message: str = "is unavailable, retry later") -> None:
        super().__init__({dependency: [message]}, headers={"Retry-After": "1"})


def error_response(
    status_code: int, errors: Mapping[str, Sequence[str]], headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"errors": {key: list(value) for key, value in errors.items()}},
        status_code=status_code,
        headers=dict(headers or {}),
        media_type=JSON_MEDIA_TYPE,
    )


# Documented on every operation, so clients and schemathesis know the shape of each failure.
def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    descriptions = {
        401: "Missing, malformed or expired token, or a deactivated account",
        403: "Authenticated, but not allowed to do this",
        404: "The resource does not exist; the error key names it",
        409: "Conflicts with an existing resource",
        413: "Request body larger than the configured limit",
        422: "Validation failed; each key names a field",
    }
    return {code: {"model": ErrorBody, "description": descriptions[code]} for code in codes}


_MESSAGES = {
    "missing": "can't be blank",
    "string_type": "must be a string",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "bool_type": "must be a boolean",
    "bool_parsing": "must be a boolean",
    "list_type": "must be an array",
    "dict_type": "must be an object",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "json_invalid": "is not valid JSON",
    "url_parsing": "is not a valid URL",
    "url_scheme": "must be an http or https URL",
    "enum": "is not one of the allowed values",
    "literal_error": "is not one of the allowed values",
    "string_pattern_mismatch": "is invalid",
}


def _message(error: Mapping[str, Any]) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    # A length check after a BeforeValidator reports the generic too_short/too_long; only
    # field_type "List" means items rather than characters.
    is_list = ctx.get("field_type") == "List"
    if kind == "string_too_short" or (kind == "too_short" and not is_list):
        minimum = ctx.get("min_length")
        return "can't be blank" if minimum == 1 else f"is too short (minimum is {minimum} characters)"
    if kind == "string_too_long" or (kind == "too_long" and not is_list):
        return f"is too long (maximum is {ctx.get('max_length')} characters)"
    if kind == "too_long":
        return f"has too many items (maximum is {ctx.get('max_length')})"
    if kind == "greater_than_equal":
        return f"must be greater than or equal to {ctx.get('ge')}"
    if kind == "less_than_equal":
        return f"must be less than or equal to {ctx.get('le')}"
    if kind == "value_error":
        return str(ctx.get("error") or error.get("msg", "is invalid"))
    return _MESSAGES.get(kind, "is invalid")


def _field(loc: Sequence[int | str]) -> str:
    # ("body", "article", "tagList", 2) -> "tagList"; ("query", "limit") -> "limit"; ("body",) -> "body"
    names = [part for part in loc if isinstance(part, str)]
    if len(names) > 1:
        return names[-1]
    return names[0] if names else "body"


def validation_errors(errors: Sequence[Mapping[str, Any]]) -> dict[str, list[str]]:
    result: dict[str, list[str]] = {}
    for error in errors:
        field = _field(error.get("loc", ()))
        message = _message(error)
        if message not in result.setdefault(field, []):
            result[field].append(message)
    return result


def is_database_outage(exc: BaseException) -> bool:
    if isinstance(exc, OperationalError | InterfaceError | PoolTimeoutError):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    # The driver raises plain socket errors when the server is not there at all.
    return isinstance(exc, ConnectionError | TimeoutError | OSError) and not isinstance(
        exc, FileNotFoundError
    )


_HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def _allowed_methods(request: Request) -> list[str]:
    """Every method of the requested path: Starlette's 405 names only the first matching route's,
    and RFC 9110 wants them all. Read from the OpenAPI paths, compiled once per app."""
    table: list[tuple[re.Pattern[str], set[str]]] | None = getattr(request.app.state, "method_table", None)
    if table is None:
        table = [
            (
                re.compile(
                    "^"
                    + "/".join(
                        "[^/]+" if part.startswith("{") else re.escape(part) for part in path.split("/")
                    )
                    + "$"
                ),
                {method.upper() for method in operations if method in _HTTP_METHODS},
            )
            for path, operations in request.app.openapi()["paths"].items()
        ]
        request.app.state.method_table = table
    methods: set[str] = set()
    for pattern, allowed in table:
        if pattern.match(request.url.path):
            methods |= allowed
    return sorted(methods)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ConduitError)
    async def _conduit_error(_request: Request, exc: ConduitError) -> JSONResponse:
        return error_response(exc.status_code, exc.errors, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, validation_errors(exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        errors = {
            # Starlette's 400 is a body it could not parse at all (bad encoding, broken form data).
            400: {"body": ["could not be parsed"]},
            404: {"path": ["not found"]},
            405: {"method": ["is not allowed on this path"]},
            413: {"body": ["is too large"]},
        }.get(exc.status_code, {"request": [str(exc.detail)]})
        status = 422 if exc.status_code == 400 else exc.status_code
        headers = dict(exc.headers or {})
        if status == 405:
            headers["Allow"] = ", ".join(_allowed_methods(request)) or headers.get("Allow", "")
        return error_response(status, errors, headers)

    @app.exception_handler(Exception)
    async def _unhandled(request: Request, exc: Exception) -> JSONResponse:
        if is_database_outage(exc):
            logger.warning("database unavailable: %s", type(exc).__name__)
            return error_response(503, {"database": ["is unavailable, retry later"]}, {"Retry-After": "1"})
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, {"server": ["an unexpected error occurred"]})
