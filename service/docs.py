"""The interactive documentation, served whole by the service: Swagger UI at /docs and ReDoc at
/redoc, their JavaScript and CSS from a Python package (fastapi-offline's copy of swagger-ui-dist
and redoc's standalone bundle) under /docs/static, never from a CDN. A cluster without internet
access, or a browser that blocks third parties, still gets working pages, and the pages need no
CSP exception for another origin.

FastAPI's own page builders write the HTML (`get_swagger_ui_html`, `get_redoc_html`). The pages
depend on nothing but the app's title, so each is rendered once, and its inline bootstrap script is
allowed by its hash in the pages' Content-Security-Policy (`service.edge` sends it), instead of
allowing every inline script. Static files live under /docs/ so the chart's Ingress, which routes
the /docs prefix, reaches them.

`INKWELL_DOCS_ENABLED=false` removes all of it, /openapi.json included (404).
"""

from __future__ import annotations

import base64
import hashlib
import re
from functools import lru_cache
from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.staticfiles import StaticFiles
from starlette.requests import Request
from starlette.responses import HTMLResponse

SWAGGER_UI = "/docs"
OAUTH2_REDIRECT = "/docs/oauth2-redirect"
REDOC = "/redoc"
STATIC = "/docs/static"
OPENAPI = "/openapi.json"
PAGES = (SWAGGER_UI, OAUTH2_REDIRECT, REDOC)

# swagger-ui.css, swagger-ui-bundle.js, redoc.standalone.js and favicon.png, as the package ships them.
ASSETS = Path(str(files("fastapi_offline") / "static"))

SWAGGER_UI_PARAMETERS = {
    # The Authorize dialog's token survives a reload of the page.
    "persistAuthorization": True,
    # No "valid" badge: Swagger UI would send the whole spec to validator.swagger.io for it.
    "validatorUrl": None,
}

_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def _pages(title: str) -> dict[str, bytes]:
    favicon = f"{STATIC}/favicon.png"
    swagger = get_swagger_ui_html(
        openapi_url=OPENAPI,
        title=f"{title} - Swagger UI",
        oauth2_redirect_url=OAUTH2_REDIRECT,
        swagger_js_url=f"{STATIC}/swagger-ui-bundle.js",
        swagger_css_url=f"{STATIC}/swagger-ui.css",
        swagger_favicon_url=favicon,
        swagger_ui_parameters=SWAGGER_UI_PARAMETERS,
    )
    redoc = get_redoc_html(
        openapi_url=OPENAPI,
        title=f"{title} - ReDoc",
        redoc_js_url=f"{STATIC}/redoc.standalone.js",
        redoc_favicon_url=favicon,
        with_google_fonts=False,
    )
    return {
        SWAGGER_UI: bytes(swagger.body),
        OAUTH2_REDIRECT: bytes(get_swagger_ui_oauth2_redirect_html().body),
        REDOC: bytes(redoc.body),
    }


def content_security_policy(pages: dict[str, bytes]) -> str:
    """The pages' CSP: their scripts from here or inline by hash; styles from here or inline (Swagger
    UI sets style attributes, ReDoc injects its styled-components); the spec and the API fetched
    from here; ReDoc's search runs in a worker it makes from a blob."""
    hashes = sorted(
        {
            "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"
            for page in pages.values()
            for script in _INLINE_SCRIPT.findall(page.decode())
        }
    )
    return "; ".join(
        [
            "default-src 'none'",
            f"script-src 'self' {' '.join(hashes)}",
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data:",
            "font-src 'self' data:",
            "connect-src 'self'",
            "worker-src 'self' blob:",
            "frame-ancestors 'none'",
            "base-uri 'none'",
            "form-action 'self'",
        ]
    )


@lru_cache(maxsize=1)
def pages_policy() -> str:
    """The pages' CSP, for the pipeline: their inline scripts hold no title, so any title will do."""
    return content_security_policy(_pages(""))


def install(app: FastAPI) -> None:
    """Serves the pages and their assets on `app`, created with FastAPI's own docs turned off."""
    pages = _pages(app.title)
    app.mount(STATIC, StaticFiles(directory=ASSETS), name="docs-static")

    def page(path: str) -> None:
        body = pages[path]

        async def endpoint(_request: Request) -> HTMLResponse:
            return HTMLResponse(body)

        app.add_api_route(path, endpoint, methods=["GET"], include_in_schema=False, name=path)

    for path in PAGES:
        page(path)
