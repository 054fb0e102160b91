"""Error reports to Sentry for the failures that are bugs, scrubbed of secrets and linked to their trace.

Reported: exceptions that reach the client as a 500 (the pipeline's last-resort layer calls
`capture`). Not reported: every 4xx (the client's mistake, answered on purpose), a response the code
chose of any status (such as the 503 the unit of work raises), and database outages: what the app
says is expected (`configure_sentry(..., expected=...)`). An outage is an availability problem, not
a defect: the 503 rate and `/readyz` alert on it, the last-resort layer logs it as a warning, and
reporting it would turn one incident into an event per failing request, each grouped by the query
that hit it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from starlette.requests import Request

from service import __version__
from service.config import Settings
from service.observability import tracing
from service.observability.logging import ACCESS_LOGGER

if TYPE_CHECKING:
    # The SDK is imported once a DSN turns reporting on: it was half a second of a worker's start, on
    # every worker of every deployment, most of which report nothing.
    from sentry_sdk.types import Event, Hint

logger = logging.getLogger(__name__)

FILTERED = "[Filtered]"

# Any header whose name holds one of these is dropped whole: credentials, and client addresses (PII).
_SENSITIVE_HEADER_PARTS = (
    "authorization",
    "cookie",
    "token",
    "secret",
    "password",
    "api-key",
    "apikey",
    "forwarded",
    "x-real-ip",
)
_SENSITIVE_PARAM = re.compile(
    r"(?P<key>[^\s&;=?#/]*(?:token|password|passwd|pwd|secret|key|auth|session|signature|credential)"
    r"[^\s&;=?#/]*)=(?P<value>[^\s&;#]*)",
    re.IGNORECASE,
)

# The settings the running client was built from; create_app runs once per app, often several per process.
_configured: tuple[str, str, str] | None = None


def _never(_exc: BaseException) -> bool:
    return False


# Failures that are answers, not bugs: never reported, whichever way they reach the SDK.
_expected: Callable[[BaseException], bool] = _never


def configure_sentry(settings: Settings, *, expected: Callable[[BaseException], bool] | None = None) -> bool:
    """Start the process's Sentry client when a DSN is set; True when reporting is on. `expected`
    says which exceptions are answers the app chose (kept from an earlier call when not given)."""
    global _configured, _expected
    if expected is not None:
        _expected = expected
    release = f"inkwell@{__version__}+{settings.git_revision}"
    key = (settings.sentry_dsn or "", settings.environment, release)
    if _configured is None and not settings.sentry_dsn:
        return False
    import sentry_sdk
    from sentry_sdk.integrations.logging import LoggingIntegration, ignore_logger

    if key == _configured and sentry_sdk.get_client().is_active():
        return True
    if _configured is not None:
        # Settings changed (or now say off): the old client must stop reporting and its sender exit.
        _shutdown()
    if not settings.sentry_dsn:
        return False
    # The access line repeats the event's request, with the client address; skipping it also keeps
    # breadcrumb work off every request.
    for name in (ACCESS_LOGGER, "uvicorn.access"):
        ignore_logger(name)
    integrations = (
        # Error log lines become breadcrumbs, never events of their own: each exception is reported
        # once, by `capture` below, and uvicorn or the OTLP exporter logging at ERROR (a collector
        # outage) must not page anyone through Sentry.
        LoggingIntegration(level=logging.INFO, event_level=None),
    )
    sentry_sdk.init(
        dsn=settings.sentry_dsn,
        environment=settings.environment,
        release=release,
        integrations=list(integrations),
        # Sentry's own auto-enabled SQLAlchemy and httpx hooks would cost every query and call a
        # breadcrumb; OpenTelemetry already records them as spans.
        auto_enabling_integrations=False,
        # What `send_default_pii=False` meant, spelled out (this SDK deprecates that flag), and tighter:
        # bodies hold passwords and drafts, frame locals hold the same values once parsed, and client
        # addresses are personal data. `before_send` scrubs again whatever an integration adds.
        data_collection={
            "user_info": False,
            "cookies": {"mode": "off"},
            "http_headers": {"request": {"mode": "denylist", "terms": ["cookie", "forwarded", "real-ip"]}},
            "http_bodies": [],
            "url_query_params": {"mode": "denylist"},
            "database_query_data": False,
            "stack_frame_variables": False,
        },
        max_request_body_size="never",
        # Tracing is OpenTelemetry's job; Sentry only receives error events.
        traces_sample_rate=None,
        # OpenTelemetry propagates W3C traceparent/baggage; Sentry's own headers would collide with them.
        trace_propagation_targets=[],
        in_app_include=["service"],
        before_send=before_send,
    )
    _configured = key
    logger.info("sentry enabled: environment=%s release=%s", settings.environment, release)
    return True


def _shutdown() -> None:
    global _configured
    import sentry_sdk

    # Sends what is queued (bounded), then stops the sender thread.
    sentry_sdk.get_client().close(timeout=2)
    sentry_sdk.get_global_scope().set_client(None)
    _configured = None


def capture(request: Request, exc: BaseException) -> None:
    """One event for an unhandled exception, with the request (scrubbed) and the caller's user id.

    Sentry's Starlette and FastAPI integrations would do this by wrapping every middleware and
    endpoint of every request, which cost about an eighth of the service's throughput; the last-resort
    layer sees exactly the exceptions worth reporting, inside the request's span, for nothing otherwise.
    """
    if _configured is None:
        return  # reporting is off, and the SDK not even imported
    import sentry_sdk
    from sentry_sdk.utils import event_from_exception

    client = sentry_sdk.get_client()
    if not client.is_active() or _expected(exc):
        return
    event, hint = event_from_exception(
        exc, client_options=client.options, mechanism={"type": "inkwell", "handled": False}
    )
    event["request"] = {
        "method": request.method,
        "url": f"{request.url.scheme}://{request.url.netloc}{request.url.path}",
        "query_string": request.url.query,
        "headers": dict(request.headers),
    }
    user_id = getattr(request.state, "user_id", None)
    if user_id is not None:
        event["user"] = {"id": str(user_id)}
    sentry_sdk.capture_event(event, hint=hint)


def before_send(event: Event, hint: Hint) -> Event | None:
    """Drop what is not a bug, scrub secrets and PII, and link the event to its OpenTelemetry trace."""
    exc_info = hint.get("exc_info")
    exc = exc_info[1] if exc_info else None
    if isinstance(exc, BaseException) and _expected(exc):
        return None
    ids = tracing.current_trace_ids()
    if ids is not None:
        event.setdefault("tags", {})["trace_id"] = ids[0]
        event.setdefault("contexts", {})["otel"] = {"trace_id": ids[0], "span_id": ids[1]}
    return scrub(event)


def scrub(event: Event) -> Event:
    data = cast(dict[str, Any], event)
    request = data.get("request")
    if isinstance(request, dict):
        for field in ("data", "cookies", "env"):
            request.pop(field, None)
        if isinstance(request.get("headers"), dict):
            request["headers"] = _scrub_headers(request["headers"])
        for field in ("url", "query_string"):
            if isinstance(request.get(field), str):
                request[field] = scrub_text(request[field])
    user = data.get("user")
    if isinstance(user, dict):
        data["user"] = {"id": user["id"]} if "id" in user else {}
    response = (data.get("contexts") or {}).get("response")
    if isinstance(response, dict) and isinstance(response.get("headers"), dict):
        response["headers"] = _scrub_headers(response["headers"])
    crumbs = data.get("breadcrumbs")
    values = crumbs.get("values") if isinstance(crumbs, dict) else crumbs
    for crumb in values if isinstance(values, list) else ():
        if isinstance(crumb.get("message"), str):
            crumb["message"] = scrub_text(crumb["message"])
        crumb_data = crumb.get("data")
        if isinstance(crumb_data, dict):
            for field in ("url", "http.query"):
                if isinstance(crumb_data.get(field), str):
                    crumb_data[field] = scrub_text(crumb_data[field])
    return event


def scrub_text(text: str) -> str:
    """`?token=abc&page=2` -> `?token=[Filtered]&page=2`, for query strings, URLs and messages."""
    return _SENSITIVE_PARAM.sub(lambda match: f"{match['key']}={FILTERED}", text)


def _scrub_headers(headers: dict[str, Any]) -> dict[str, Any]:
    return {
        name: value
        for name, value in headers.items()
        if not any(part in name.lower() for part in _SENSITIVE_HEADER_PARTS)
    }
