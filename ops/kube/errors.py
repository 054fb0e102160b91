"""The adapter's one exception, so callers handle a failed API call without knowing the Kubernetes client."""

from __future__ import annotations

import contextlib
import json

from kubernetes.client import ApiException


class KubeError(Exception):
    """An API call failed; the message is the API server's own, fit for an operator."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class NotFound(KubeError):
    pass


def api_error(exc: ApiException, doing: str) -> KubeError:
    message = exc.reason or "error"
    with contextlib.suppress(ValueError, AttributeError):
        message = json.loads(exc.body or "{}").get("message") or message
    kind = NotFound if exc.status == 404 else KubeError
    return kind(f"{doing}: {message} (HTTP {exc.status})", status=exc.status)
