"""How every HTTP response is written: JSON in one media type, and every failure a client can cause as
the Conduit error document, `{"errors": {"field": ["message"]}}`, never a stack trace.

Domain code raises `service.errors`; the handlers here turn those, FastAPI's own validation errors,
unknown routes and malformed bodies into that format, and `error_responses` documents them on each
operation. What escapes every handler is answered by the pipeline's last-resort layer
(`service.middleware.UnhandledErrors`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from pydantic_core import to_json
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response

from service.errors import ConduitError

JSON_MEDIA_TYPE = "application/json; charset=utf-8"

logger = structlog.get_logger("inkwell.errors")


def json_response(content: BaseModel | Mapping[str, Any], *, status_code: int = 200) -> Response:
    """The JSON of wire-ready data (a mapper's output), serialised once by pydantic's core and not
    validated again: the one way every endpoint answers."""
    body = content.model_dump_json(by_alias=True) if isinstance(content, BaseModel) else to_json(content)
    return Response(body, status_code=status_code, media_type=JSON_MEDIA_TYPE)


class ErrorBody(BaseModel):
    """The Conduit error document, for the OpenAPI responses."""

    errors: dict[str, list[str]]


def error_response(
    status_code: int, errors: Mapping[str, Sequence[str]], headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"errors": {key: list(value) for key, value in errors.items()}},
        status_code=status_code,
        headers=dict(headers or {}),
        media_type=JSON_MEDIA_TYPE,
    )


def conduit_error_response(exc: ConduitError) -> JSONResponse:
    """The answer to a Conduit error, from a handler or from the last-resort layer: the one place an
    API 503 is written, so each is logged here with what it says and what caused it (the access
    line alone cannot tell a busy service from a dependency that is gone)."""
    if exc.status_code == 503:
        causes: list[str] = []
        cause = exc.__cause__ or exc.__context__
        while cause is not None and len(causes) < 3:
            causes.append(f"{type(cause).__name__}: {cause}"[:300])
            cause = cause.__cause__ or cause.__context__
        logger.warning("answered 503", errors=exc.errors, reason=" <- ".join(causes) or "none given")
    return error_response(exc.status_code, exc.errors, exc.headers)


# Documented on every operation, so clients and schemathesis know the shape of each failure.
def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    descriptions = {
        401: "Missing, malformed or expired token, or a deactivated account",
        403: "Authenticated, but not allowed to do this",
        404: "The resource does not exist; the error key names it",
        409: "Conflicts with an existing resource",
        413: "Request body larger than the configured limit",
        422: "Validation failed; each key names a field",
        429: "Too many requests or failed logins: retry after Retry-After seconds",
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
        return conduit_error_response(exc)

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
