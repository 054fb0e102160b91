"""Logs an SRE can query: one JSON object per line on stdout, secrets masked, every line of a request
carrying its request id (and trace id), and one access line per request.

Everything goes through the standard library's root logger, whose single handler renders with
structlog's ProcessorFormatter, so the service's structlog events, uvicorn, SQLAlchemy warnings and
third-party loggers all come out the same way.
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import json
import logging
import re
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import structlog
from fastapi import FastAPI
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from structlog.typing import EventDict, Processor, WrappedLogger

from service.config import Settings
from service.observability.routes import QUIET_PATHS, RouteTemplates
from service.observability.tracing import current_trace_ids

ACCESS_LOGGER = "inkwell.access"
REDACTED = "[REDACTED]"
# Probes and scrapes hit every few seconds: logged, but below the production level.

_HANDLER_NAME = "inkwell-stdout"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# Set on an exception the app has already answered (and logged) so uvicorn does not log it again.
_ANSWERED = "_inkwell_answered"

# Keys whose value is a secret whatever it looks like; matched anywhere in the lowercased key, so
# access_token, x-api-key, set-cookie and password_hash are all covered.
_SECRET_KEY = re.compile(r"passw|passphrase|pwd|secret|token|authorization|cookie|api[-_]?key|jwt|credential")
# Secrets inside free text (messages, tracebacks, URLs, header dumps).
_SECRET_TEXT = re.compile(
    r"(?P<jwt>eyJ[\w-]{10,}(?:\.[\w-]*){0,2})"
    r"|(?P<scheme>\b(?:Token|Bearer|Basic) )[\w.~+/=-]{16,}"
    # Bounded repetitions and a word-start anchor keep this linear on long unbroken strings.
    r"|(?P<pair>(?<![\w-])(?i:[\w-]{0,40}?(?:passw|pwd|secret|token|authorization|cookie|api[-_]?key)[\w-]{0,20})"
    r"[\"']?\s*[=:]\s*[\"']?)"
    r"(?:(?:Token|Bearer|Basic) )?[^\s&,;\"'}]+"
    r"|(?P<userinfo>://[^/\s:@]+:)[^@\s/]+@"
)


# Written by the processors above the redaction, never from request data.
_OWN_KEYS = frozenset({"timestamp", "level", "logger"})


def _mask_match(match: re.Match[str]) -> str:
    kept = match.group("scheme") or match.group("pair") or match.group("userinfo") or ""
    return f"{kept}{REDACTED}@" if match.group("userinfo") else f"{kept}{REDACTED}"


@functools.lru_cache(maxsize=2048)
def _is_secret_key(key: str) -> bool:
    return _SECRET_KEY.search(key.lower()) is not None


def _scrub(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        # Every pattern needs one of these; most values (paths, ids, numbers) have none.
        if "=" in value or ":" in value or " " in value or "eyJ" in value:
            return _SECRET_TEXT.sub(_mask_match, value)
        return value
    if isinstance(value, Mapping):
        return {
            key: REDACTED if isinstance(key, str) and _is_secret_key(key) else _scrub(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        # ("authorization", "Token ...") pairs, as in ASGI or httpx header lists.
        if len(value) == 2 and isinstance(value, tuple):
            name = value[0].decode("latin-1") if isinstance(value[0], bytes) else value[0]
            if isinstance(name, str) and _is_secret_key(name):
                return (value[0], REDACTED)
        return [_scrub(item) for item in value]
    if isinstance(value, bytes):
        return _scrub(value.decode("latin-1"))
    # Anything else would be rendered through repr(), so that is what must be clean.
    return _scrub(repr(value))


def redact_secrets(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """Masks every value under a secret-sounding key, and secrets found in any string, at any depth."""
    return {
        key: value if key in _OWN_KEYS else REDACTED if _is_secret_key(key) else _scrub(value)
        for key, value in event_dict.items()
    }


def add_trace_ids(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """Links a log line to its trace: the active span's ids, when there is one."""
    if "trace_id" not in event_dict:
        ids = current_trace_ids()
        if ids is not None:
            event_dict["trace_id"], event_dict["span_id"] = ids
    return event_dict


class _StdoutHandler(logging.Handler):
    """Writes to whatever sys.stdout is at the time, so a replaced stdout (tests) is honoured."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
            stream = sys.stdout
            stream.write(line + "\n")
            stream.flush()
        except Exception:  # noqa: BLE001 - logging.Handler's contract: report, never raise
            self.handleError(record)


class _SkipAnsweredErrors(logging.Filter):
    """Drops uvicorn's "Exception in ASGI application" for errors the app has answered and logged."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not getattr(exc, _ANSWERED, False)


def _level(name: str) -> int:
    level = logging.getLevelNamesMapping().get(name.upper())
    if level is None:
        raise ValueError(f"INKWELL_LOG_LEVEL={name!r} is not a logging level (DEBUG, INFO, WARNING, ERROR)")
    return level


def configure_logging(settings: Settings) -> None:
    """Routes every logger in the process to one stdout handler; safe to call again (it replaces)."""
    level = _level(settings.log_level)
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        add_trace_ids,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
    ]
    # This chain does not depend on the settings, so loggers cached by an earlier call stay right.
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    renderer: Processor
    if settings.log_format == "console":
        renderer = structlog.dev.ConsoleRenderer(
            colors=sys.stdout.isatty(), exception_formatter=structlog.dev.plain_traceback
        )
    else:
        renderer = structlog.processors.JSONRenderer()
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            # The traceback becomes a string field first, so redaction sees it too.
            structlog.processors.format_exc_info,
            redact_secrets,
            renderer,
        ],
    )

    root = logging.getLogger()
    for handler in list(root.handlers):
        if handler.get_name() == _HANDLER_NAME:
            root.removeHandler(handler)
    handler = _StdoutHandler()
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(formatter)
    root.addHandler(handler)
    root.setLevel(level)
    # INKWELL_ACCESS_LOG=false silences the access line where another layer (the ingress) logs it.
    logging.getLogger(ACCESS_LOGGER).setLevel(logging.NOTSET if settings.access_log else logging.CRITICAL)

    # Whatever uvicorn configured before the app was loaded, its lines go through our handler;
    # its own access log is replaced by the middleware's.
    for name in ("uvicorn", "uvicorn.error"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
    uvicorn_access = logging.getLogger("uvicorn.access")
    uvicorn_access.handlers.clear()
    uvicorn_access.propagate = False
    uvicorn_access.disabled = True
    uvicorn_error = logging.getLogger("uvicorn.error")
    if not any(isinstance(existing, _SkipAnsweredErrors) for existing in uvicorn_error.filters):
        uvicorn_error.addFilter(_SkipAnsweredErrors())

    # SQLAlchemy's warnings (and everyone else's) become log lines instead of stderr text.
    logging.captureWarnings(True)
    # With INKWELL_DB_ECHO, SQLAlchemy gives its engine logger a plain-text stdout handler unless it
    # already has one; a NullHandler keeps the statements flowing to ours as JSON instead.
    engine_logger = logging.getLogger("sqlalchemy.engine.Engine")
    if not engine_logger.handlers:
        engine_logger.addHandler(logging.NullHandler())


class TrustedProxies:
    """The proxies (IPs or CIDRs) whose X-Forwarded-For is believed, as uvicorn's proxy_headers does."""

    def __init__(self, entries: Iterable[str]) -> None:
        self.networks = [ipaddress.ip_network(entry.strip(), strict=False) for entry in entries]
        self.contains: Callable[[str], bool] = functools.lru_cache(maxsize=4096)(self._contains)

    def _contains(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            return False
        return any(address in network for network in self.networks)

    def client(self, peer: str | None, forwarded_for: list[bytes]) -> str | None:
        """The peer, or, when the peer is a trusted proxy, the right-most untrusted forwarded address."""
        if peer is None or not forwarded_for or not self.contains(peer):
            return peer
        hops = [hop.strip() for hop in b",".join(forwarded_for).decode("latin-1").split(",")]
        hops = [_strip_port(hop) for hop in hops if hop]
        for hop in reversed(hops):
            if not self.contains(hop):
                return hop[:64]
        # Every hop is a proxy we trust: the first one is as close to the client as we can get.
        return hops[0][:64] if hops else peer


def _strip_port(hop: str) -> str:
    if hop.startswith("["):
        return hop[1 : hop.find("]")] if "]" in hop else hop
    if hop.count(":") == 1:
        return hop.split(":", 1)[0]
    return hop


class RequestContext:
    """Pure ASGI middleware: request id in and out, bound to the request's log lines; the access line.

    It wraps the whole Starlette stack, outside the error middleware, so a 500 carries the header
    and the error handler's traceback line carries the request id.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        routes: Sequence[BaseRoute],
        trusted_proxies: TrustedProxies,
        json_lines: bool = True,
    ) -> None:
        self.app = app
        self.json_lines = json_lines
        self.templates = RouteTemplates(routes)
        self.proxies = trusted_proxies
        self.access = structlog.stdlib.get_logger(ACCESS_LOGGER)
        self.access_std = logging.getLogger(ACCESS_LOGGER)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        request_id: str | None = None
        forwarded_for: list[bytes] = []
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                candidate = value.decode("latin-1")
                if _REQUEST_ID.fullmatch(candidate):
                    request_id = candidate
            elif name == b"x-forwarded-for":
                forwarded_for.append(value)
        if request_id is None:
            request_id = uuid.uuid4().hex
        header = (b"x-request-id", request_id.encode("latin-1"))
        status = 500
        sent = 0
        completed = False
        trace_ids: tuple[str, str] | None = None

        async def send_with_request_id(message: Message) -> None:
            nonlocal status, sent, completed, trace_ids
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), header]}
                # Inside the tracing middleware's span, unlike the access line written below.
                trace_ids = current_trace_ids()
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
                completed = not message.get("more_body", False)
            await send(message)

        tokens = structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            await self.app(scope, receive, send_with_request_id)
        except BaseException as exc:
            if completed:
                # Starlette re-raises what its error handler already answered and logged.
                with contextlib.suppress(AttributeError):
                    setattr(exc, _ANSWERED, True)
            raise
        finally:
            path: str = scope["path"]
            level = logging.DEBUG if path in QUIET_PATHS else logging.INFO
            if self.access_std.isEnabledFor(level):
                self._log_access(scope, level, status, sent, start, forwarded_for, trace_ids)
            structlog.contextvars.reset_contextvars(**tokens)

    def _log_access(
        self,
        scope: Scope,
        level: int,
        status: int,
        sent: int,
        start: float,
        forwarded_for: list[bytes],
        trace_ids: tuple[str, str] | None,
    ) -> None:
        peer = scope.get("client")
        fields: dict[str, Any] = {
            "method": scope["method"],
            "route": self.templates.of(scope.get("route")),
            "path": scope["path"],
            "status": status,
            "duration_ms": round((time.perf_counter() - start) * 1000, 2),
            "bytes": sent,
            "client": self.proxies.client(peer[0] if peer else None, forwarded_for),
        }
        state = scope.get("state")
        user_id = state.get("user_id") if isinstance(state, Mapping) else None
        if user_id is not None:
            fields["user_id"] = user_id
        trace_ids = trace_ids or current_trace_ids()
        if trace_ids is not None:
            fields["trace_id"], fields["span_id"] = trace_ids
        if self.json_lines:
            # The hot path: one line per request is worth building directly (the same keys, the same
            # redaction) instead of through structlog's and logging's general pipeline, which cost
            # about a tenth of the service's throughput.
            record = {
                "event": "request",
                **fields,
                **structlog.contextvars.get_contextvars(),
                "level": "debug" if level == logging.DEBUG else "info",
                "logger": ACCESS_LOGGER,
                "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            }
            line = json.dumps(redact_secrets(None, "", record), default=repr)
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
            return
        log = self.access.debug if level == logging.DEBUG else self.access.info
        log("request", **fields)


def instrument_app(app: FastAPI, settings: Settings) -> None:
    """Puts RequestContext around the app's whole middleware stack, error handling and tracing included."""
    build = app.build_middleware_stack
    # Parsed now, so a malformed INKWELL_TRUSTED_PROXIES fails at startup, not on the first request.
    trusted = TrustedProxies(settings.trusted_proxies)

    def build_with_request_context() -> ASGIApp:
        return RequestContext(
            build(), routes=app.routes, trusted_proxies=trusted, json_lines=settings.log_format == "json"
        )

    app.build_middleware_stack = build_with_request_context  # type: ignore[method-assign]
