"""The pipeline's edge: the security headers every response carries, and the Host names it answers.

Headers. An API answers JSON that a browser should never render, sniff, frame or cache on a shared
machine, so every response (errors, CORS preflights and cache hits included) gets:

- `X-Content-Type-Options: nosniff`: a JSON body is never run as a script or drawn as HTML;
- `Content-Security-Policy: default-src 'none'; frame-ancestors 'none'` and `X-Frame-Options: DENY`:
  nothing an API response could load runs, and no page may frame it (the CSP for current browsers,
  X-Frame-Options for older ones). The documentation pages are HTML that must run Swagger UI and
  ReDoc, so they get their own policy (`service.docs.CONTENT_SECURITY_POLICY`): scripts and styles
  from this origin only, their inline bootstrap script by hash;
- `Referrer-Policy: no-referrer`: nothing served here links elsewhere, and a URL of ours (a slug, a
  username in a query) has no business in another site's logs;
- `Cache-Control: no-store` on whatever carries a token or a user's data: every signed-in request
  (its answer says what the reader follows and favours, or is the reader), and every answer of
  /api/user, /api/users*, /api/token and /api/admin/* (a login's token, a registration's). Anonymous
  public reads keep what they have: the service's own cache (`service.cache`) is where they are
  shared, and it keys on the Authorization header, not on this one;
- `Strict-Transport-Security: max-age=N; includeSubDomains` when `INKWELL_HSTS_SECONDS` is set: only
  the deployment knows whether it is reached over TLS (the chart sets it when its ingress has TLS).

The header lists are built once per app and appended to the response's start message: no Request,
no Headers object, one path comparison per response (see the README's Security section for cost).

Hosts. A request whose Host is not one of `INKWELL_ALLOWED_HOSTS` is refused with a Conduit 400
before anything else runs (Starlette's TrustedHostMiddleware decides; its plain-text refusal is
replaced by the Conduit error document). The probes (/healthz, /readyz) and /metrics are exempt:
the kubelet and Prometheus address a pod by its IP, which no list of names can hold, and they
answer nothing a forged Host could turn into a cache poisoning or a link.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.responses import error_response

API_CONTENT_SECURITY_POLICY = "default-src 'none'; frame-ancestors 'none'"
REFERRER_POLICY = "no-referrer"
NO_STORE = (b"cache-control", b"no-store")
# Paths whose every answer carries a token or a user's own data, signed in or not.
PRIVATE_PREFIXES = ("/api/user", "/api/token", "/api/admin")
# Probes and the scrape: addressed by pod IP, so never refused for their Host.
HOST_EXEMPT_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def _headers(content_security_policy: str, hsts_seconds: int) -> list[tuple[bytes, bytes]]:
    headers = [
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        (b"content-security-policy", content_security_policy.encode()),
        (b"referrer-policy", REFERRER_POLICY.encode()),
    ]
    if hsts_seconds > 0:
        headers.append((b"strict-transport-security", f"max-age={hsts_seconds}; includeSubDomains".encode()))
    return headers


def is_private(scope: Scope) -> bool:
    """A request whose answer carries a token or a user's data: never stored by any cache."""
    path: str = scope["path"]
    if path.startswith(PRIVATE_PREFIXES):
        return True
    return any(name == b"authorization" for name, _ in scope["headers"])


class SecurityHeaders:
    """Adds the module's headers to every HTTP response; `pages` are the HTML paths (the docs) that
    get `pages_policy` as their Content-Security-Policy instead of the API's."""

    def __init__(
        self, app: ASGIApp, *, hsts_seconds: int = 0, pages: Sequence[str] = (), pages_policy: str = ""
    ) -> None:
        self.app = app
        self.api_headers = _headers(API_CONTENT_SECURITY_POLICY, hsts_seconds)
        self.page_headers = _headers(pages_policy or API_CONTENT_SECURITY_POLICY, hsts_seconds)
        self.pages = frozenset(pages)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        added = self.page_headers if scope["path"] in self.pages else self.api_headers
        private = is_private(scope)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.get("headers", [])
                if private:
                    # Whatever a layer below said, no cache may keep this answer.
                    headers = [header for header in headers if header[0].lower() != b"cache-control"]
                    headers.append(NO_STORE)
                message["headers"] = [*headers, *added]
            await send(message)

        await self.app(scope, receive, send_with_headers)


_PASSED = "inkwell.host_trusted"


async def _mark_trusted(scope: Scope, _receive: Receive, _send: Send) -> None:
    scope[_PASSED] = True


async def _discard(_message: Message) -> None:
    """Where Starlette's own plain-text refusal goes: the Conduit one is sent instead."""


class TrustedHosts:
    """Refuses a request whose Host is not allowed with `{"errors": {"host": ["is not allowed"]}}`,
    400. Starlette's TrustedHostMiddleware decides (its parsing of Host and its `*.example.com`
    patterns, unchanged); it runs as a check whose inner app only marks the scope, so the service
    itself is called here, outside it, and only the refusal is ours. Starlette's redirect of `x` to an
    allowed `www.x` is off: an API client would follow it with a GET, or lose its body."""

    def __init__(
        self, app: ASGIApp, *, allowed_hosts: Sequence[str], origins: Sequence[str] = ("*",)
    ) -> None:
        self.app = app
        self.check = TrustedHostMiddleware(
            _mark_trusted, allowed_hosts=list(allowed_hosts), www_redirect=False
        )
        self.allow_any = self.check.allow_any
        # WebSockets (/api/live) are not covered by CORS: a browser opens one from any page, so the
        # Origin it sends is checked here against INKWELL_CORS_ORIGINS ("*": any).
        self.origins = None if "*" in origins else frozenset(origin.encode() for origin in origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
            return
        if self.allow_any or scope["type"] != "http" or scope["path"] in HOST_EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        await self.check(scope, receive, _discard)
        if scope.pop(_PASSED, False):
            await self.app(scope, receive, send)
            return
        await error_response(400, {"host": ["is not allowed"]})(scope, receive, send)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A WebSocket from a Host not allowed, or from a browser page of an Origin not allowed, is
        refused before it is accepted (the client sees 403)."""
        trusted = True
        if not self.allow_any:
            # Starlette's check as it runs for HTTP, on a copy: its refusal is an HTTP response.
            as_http = {**scope, "type": "http"}
            await self.check(as_http, receive, _discard)
            trusted = bool(as_http.get(_PASSED))
        origin = next((value for name, value in scope["headers"] if name == b"origin"), None)
        if self.origins is not None and origin is not None and origin not in self.origins:
            trusted = False
        if trusted:
            await self.app(scope, receive, send)
            return
        await send({"type": "websocket.close", "code": 1008, "reason": ""})
