"""The full route template of a request (`/api/articles/{slug}`), for log lines and span names.

Since FastAPI 0.137 `scope["route"]` is the route as declared, without the prefixes of the routers
it was included under; the full template comes from FastAPI's route contexts, looked up once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi.routing import iter_route_contexts
from starlette.routing import BaseRoute

UNMATCHED_ROUTE = "<unmatched>"
# Probes and scrapes: frequent, never interesting as traces, and logged at debug only.
QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


class RouteTemplates:
    def __init__(self, routes: Sequence[BaseRoute]) -> None:
        self.routes = routes
        self.templates: dict[int, str] = {}

    def of(self, route: Any) -> str:
        """The template of the matched route (scope["route"]), or UNMATCHED_ROUTE for None."""
        if route is None:
            return UNMATCHED_ROUTE
        template = self.templates.get(id(route))
        if template is None:
            # Routes can be added after the app is built; a miss rebuilds the table once.
            self.templates = {
                id(context.original_route): context.path or UNMATCHED_ROUTE
                for context in iter_route_contexts(self.routes)
            }
            template = self.templates.setdefault(id(route), getattr(route, "path", None) or UNMATCHED_ROUTE)
        return template
