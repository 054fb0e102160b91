"""Logs an SRE can query: one JSON object per line on stdout, secrets masked, every line of a request
carrying its request id (and trace id), and one access line per request.

Everything goes through the standard library's root logger, whose single handler renders with
structlog's ProcessorFormatter, so the service's structlog events, uvicorn, SQLAlchemy warnings and
third-party loggers all come out the same way.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import logging
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from service.config import Settings
from service.observability.routes import QUIET_PATHS
from service.observability.tracing import current_trace_ids

if TYPE_CHECKING:
    from service.observability.http import Exchange

ACCESS_LOGGER = "inkwell.access"
REDACTED = "[REDACTED]"

_HANDLER_NAME = "inkwell-stdout"

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
    # its own access log is replaced by ours (AccessLog).
    for name in ("uvicorn", "uvicorn.error"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
    uvicorn_access = logging.getLogger("uvicorn.access")
    uvicorn_access.handlers.clear()
    uvicorn_access.propagate = False
    uvicorn_access.disabled = True

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


class AccessLog:
    """One access line per request, at debug for probes and scrapes (they hit every few seconds), an
    observer of `service.observability.http`: written while the request's span is still current, so
    it carries the trace id."""

    def __init__(self, settings: Settings) -> None:
        # Parsed now, so a malformed INKWELL_TRUSTED_PROXIES fails at startup, not on the first request.
        self.proxies = TrustedProxies(settings.trusted_proxies)
        self.json_lines = settings.log_format == "json"
        self.access = structlog.stdlib.get_logger(ACCESS_LOGGER)
        self.access_std = logging.getLogger(ACCESS_LOGGER)

    def started(self, exchange: Exchange) -> None:
        pass

    def finished(self, exchange: Exchange) -> None:
        level = logging.DEBUG if exchange.path in QUIET_PATHS else logging.INFO
        if not self.access_std.isEnabledFor(level):
            return
        scope = exchange.scope
        peer = scope.get("client")
        fields: dict[str, Any] = {
            "method": exchange.method,
            "route": exchange.route(),
            "path": exchange.path,
            "status": exchange.status,
            "duration_ms": round(exchange.duration * 1000, 2),
            "bytes": exchange.sent,
            "client": self.proxies.client(peer[0] if peer else None, exchange.forwarded_for),
        }
        state = scope.get("state")
        user_id = state.get("user_id") if isinstance(state, Mapping) else None
        if user_id is not None:
            fields["user_id"] = user_id
        trace_ids = current_trace_ids()
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
