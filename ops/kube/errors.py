"""The adapter's exceptions, so callers handle a failed API call without knowing the Kubernetes client: a
KubeError is one line an operator can act on, whether the API server refused the call, could not be
reached, or the kubeconfig that names it could not be used."""

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


class Unreachable(KubeError):
    """No answer from the API server at all: refused, timed out, TLS or DNS failed (exit 1, as kubectl)."""


class UnusableKubeconfig(KubeError):
    """The kubeconfig is missing or cannot be used: the invocation is wrong, not the cluster (exit 2)."""


def api_error(exc: ApiException, doing: str) -> KubeError:
    message = exc.reason or "error"
    with contextlib.suppress(ValueError, AttributeError):
        message = json.loads(exc.body or "{}").get("message") or message
    kind = NotFound if exc.status == 404 else KubeError
    return kind(f"{doing}: {message} (HTTP {exc.status})", status=exc.status)
