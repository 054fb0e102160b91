"""The request pipeline: every ASGI layer a request passes through before FastAPI routes it, in order,
outermost first, each with the reason it sits where it does. `create_app` installs it; nothing else
adds middleware or replaces Starlette's or FastAPI's internals.

Inside these, Starlette and FastAPI add their own two: ServerErrorMiddleware outermost (a plain 500
for a bug in a layer below, which `UnhandledErrors` leaves nothing else to reach) and, innermost,
the exception handlers of `service.responses` (Conduit errors, validation, 404, 405).
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.middleware import Middleware
from starlette.routing import BaseRoute

from service import docs
from service.cache import PublicReadCache, ResponseCache
from service.config import Settings
from service.edge import SecurityHeaders, TrustedHosts
from service.middleware import BodySizeLimitMiddleware, UnhandledErrors
from service.observability import errors, request_observers
from service.observability.http import ResponseObserver
from service.ratelimit import Limiter, RateLimits


def layers(
    settings: Settings, *, routes: Sequence[BaseRoute], cache: ResponseCache, limiter: Limiter | None = None
) -> list[Middleware]:
    return [
        # Request id, server span, RED metrics and access line from one capture of the response:
        # outermost, so a CORS preflight, a 413 and a 500 are observed like everything else.
        Middleware(ResponseObserver, routes=routes, observers=request_observers(settings)),
        # Security headers on every response, whichever layer below answers it (a refused Host, a
        # preflight, a 413, a 500, a cache hit); inside the observer, so their cost is in its timings.
        Middleware(
            SecurityHeaders,
            hsts_seconds=settings.hsts_seconds,
            pages=docs.PAGES if settings.docs_enabled else (),
            pages_policy=docs.pages_policy(),
        ),
        # A Host not allowed is refused before anything else works for it; its 400 has the headers.
        Middleware(TrustedHosts, allowed_hosts=settings.allowed_hosts, origins=settings.cors_origins),
        # Every response a browser reads carries its CORS headers, errors included.
        Middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials="*" not in settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "X-Requested-With", "X-Request-ID"],
            expose_headers=["X-Request-ID", "Retry-After", "RateLimit", "RateLimit-Policy"],
            max_age=600,
        ),
        # What no handler caught becomes a Conduit 500 (or 503 for an outage), reported to Sentry
        # inside the request's span, so the report carries its trace id.
        Middleware(UnhandledErrors, report=errors.capture),
        # Before anything reads a body, so an oversized one is refused while it arrives.
        Middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes),
        # Rate limits: inside the observer (a 429 is observed), before the cache (a cached read
        # counts against its budget).
        *([Middleware(RateLimits, limiter=limiter, settings=settings)] if limiter is not None else []),
        # Innermost: a hit skips routing, dependencies and the endpoint, and nothing else.
        Middleware(PublicReadCache, cache=cache, routes=routes),
    ]


def install(
    app: FastAPI, settings: Settings, *, cache: ResponseCache, limiter: Limiter | None = None
) -> None:
    """Adds the layers to `app` so that the first listed is outermost."""
    for layer in reversed(layers(settings, routes=app.routes, cache=cache, limiter=limiter)):
        app.add_middleware(layer.cls, *layer.args, **layer.kwargs)
