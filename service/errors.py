"""The failures a client can cause, as exceptions any layer may raise: each becomes a Conduit error
document, `{"errors": {"field": ["message"]}}`, with its status (`service.responses` writes it)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


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
