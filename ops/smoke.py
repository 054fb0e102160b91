"""A user's journey through the public API after a deploy (register, log in, publish, read, comment,
delete), plus the check that internal endpoints are not published, with each step's status and latency.
The comment is also watched for over /api/live (the `live` step): a socket opened through the same URL
and subscribed to the article before the comment is posted must receive its `comment.created`, which
proves the ingress upgrades WebSockets and the service publishes after the commit.

Whether the URL reaches the service itself (make run, a port-forward, a pod's port: the probes are
served) or an ingress (they are not) is found by asking it, never from its address: the staging stack's
nginx and a port-forwarded ingress are loopback URLs too. Since /metrics has a port of its own
(INKWELL_METRICS_PORT, as the chart and the staging stack run it), the service's public port answers it
404; only through an ingress is that 404 a requirement."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    # Imported where a request is made: every other command loads this module (its report is shown by
    # ops.views), and httpx takes a fifth of a second to import; websocket-client likewise.
    import httpx
    import websocket

INTERNAL = ("/metrics", "/healthz", "/readyz")


class Internal(StrEnum):
    auto = "auto"  # asked: exposed when /readyz answers as the service does, hidden otherwise
    hidden = "hidden"
    exposed = "exposed"
    skip = "skip"


@dataclass
class Step:
    name: str
    method: str
    path: str
    status: int | None
    expected: str
    ok: bool
    latency_ms: float | None
    detail: str = ""


@dataclass
class SmokeReport:
    url: str
    internal: Internal
    steps: list[Step] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.steps)


def is_service_probe(response: httpx.Response) -> bool:
    """/readyz as the service answers it: 200 ready or 503 not ready, with its own JSON document (an
    ingress answers 404, or a 503 of its own without that document)."""
    if response.status_code not in (200, 503):
        return False
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("status") in ("ok", "unavailable")


def resolve_internal(http: httpx.Client, internal: Internal) -> Internal:
    """`auto` decided by asking the URL for /readyz: the service itself serves it, an ingress does not."""
    if internal is not Internal.auto:
        return internal
    import httpx

    try:
        answer = http.get("/readyz")
    except httpx.HTTPError:
        # Nothing answers: every step fails on its own; expect what a public URL should show.
        return Internal.hidden
    return Internal.exposed if is_service_probe(answer) else Internal.hidden


class _Journey:
    def __init__(self, http: httpx.Client, report: SmokeReport) -> None:
        self.http = http
        self.report = report
        self.token = ""

    def call(
        self,
        name: str,
        method: str,
        path: str,
        expected: set[int],
        *,
        body: dict[str, Any] | None = None,
        check: Callable[[httpx.Response], str] | None = None,
    ) -> httpx.Response | None:
        headers = {"Authorization": f"Token {self.token}"} if self.token else {}
        started = time.perf_counter()
        wanted = "/".join(str(s) for s in sorted(expected))
        import httpx

        try:
            response = self.http.request(method, path, json=body, headers=headers)
        except httpx.HTTPError as exc:
            self.report.steps.append(
                Step(name, method, path, None, wanted, False, None, f"{type(exc).__name__}: {exc}")
            )
            return None
        latency = (time.perf_counter() - started) * 1000
        problem = "" if response.status_code in expected else _brief(response)
        if response.status_code == 400 and '"host"' in problem:
            problem = (
                f"Host {response.request.headers.get('host')!r} is not in the service's "
                f"INKWELL_ALLOWED_HOSTS (--host NAME sends another): {problem}"
            )
        if not problem and check is not None:
            problem = check(response)
        self.report.steps.append(
            Step(name, method, path, response.status_code, wanted, not problem, round(latency, 1), problem)
        )
        return None if problem else response

    def skip(self, name: str, method: str, path: str, why: str) -> None:
        self.report.steps.append(Step(name, method, path, None, "-", False, None, f"skipped: {why}"))


LIVE_PATH = "/api/live"
SUBPROTOCOL = "inkwell.live.v1"
NO_UPGRADE = (
    "the URL did not upgrade {path} to a WebSocket ({answer}): the ingress does not pass WebSockets "
    "there. Check the live Ingress (<release>-live: its Upgrade handling, e.g. nginx.org/websocket-"
    "services on F5 NGINX, and its proxy read/send timeouts, docs/live-operations.md), or live "
    "updates are off (live.enabled)"
)


def live_url(url: str) -> str:
    """ws:// or wss:// for the http(s) URL, path /api/live."""
    base = url.rstrip("/")
    scheme, _, rest = base.partition("://")
    return ("wss" if scheme == "https" else "ws") + "://" + rest + LIVE_PATH


class _LiveWatch:
    """A socket on /api/live subscribed to one article, opened before the comment is posted."""

    def __init__(self, url: str, *, host: str | None, timeout: float, verify: bool) -> None:
        self.url = live_url(url)
        self.host = host
        self.timeout = timeout
        self.verify = verify
        self.socket: websocket.WebSocket | None = None
        self.upgraded = False  # the handshake answered 101

    def open(self, slug: str) -> str:
        """Connects and subscribes to article:<slug>; what went wrong, or "" once subscribed."""
        import ssl

        import websocket

        options: dict[str, Any] = {"subprotocols": [SUBPROTOCOL], "timeout": self.timeout}
        # No Origin: the service checks a browser's against INKWELL_CORS_ORIGINS, and this is none.
        options["suppress_origin"] = True
        if self.host:
            options["host"] = self.host
        if not self.verify:
            options["sslopt"] = {"cert_reqs": ssl.CERT_NONE, "check_hostname": False}
        try:
            self.socket = websocket.create_connection(self.url, **options)
        except websocket.WebSocketBadStatusException as exc:
            return NO_UPGRADE.format(path=LIVE_PATH, answer=f"HTTP {exc.status_code}")
        except (OSError, websocket.WebSocketException) as exc:
            return f"{type(exc).__name__}: {exc}"
        self.upgraded = True
        topic = f"article:{slug}"
        deadline = time.monotonic() + self.timeout
        while True:
            problem = self._send({"type": "subscribe", "topics": [topic]}) or self._await(
                lambda m: m.get("type") == "subscribed" and topic in m.get("topics", [])
            )
            # The service looks the article up in a read that may go to a replica, where one just
            # published is unknown for as long as the replica lags: asked again, until the timeout.
            if '"not found"' not in problem or time.monotonic() >= deadline:
                return problem
            time.sleep(0.2)

    def _send(self, message: dict[str, Any]) -> str:
        import websocket

        assert self.socket is not None
        try:
            self.socket.send(json.dumps(message))
        except (OSError, websocket.WebSocketException) as exc:
            return f"{type(exc).__name__}: {exc}"
        return ""

    def _await(self, wanted: Callable[[dict[str, Any]], bool]) -> str:
        """Reads frames until one is `wanted` (""), an error, a close or the timeout (what happened)."""
        import websocket

        assert self.socket is not None
        deadline = time.monotonic() + self.timeout
        while (left := deadline - time.monotonic()) > 0:
            self.socket.settimeout(left)
            try:
                opcode, data = self.socket.recv_data()
            except websocket.WebSocketTimeoutException:
                break
            except (OSError, websocket.WebSocketException) as exc:
                return f"the socket closed: {type(exc).__name__}: {exc}"
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                # The close code and reason (docs/live.md), e.g. 1013 when the service lost its bus.
                code = int.from_bytes(data[:2], "big") if len(data) >= 2 else None
                return f"the service closed the socket: {code} {data[2:].decode(errors='replace')}".rstrip()
            if opcode != websocket.ABNF.OPCODE_TEXT:
                continue
            message = json.loads(data)
            if message.get("type") == "error":
                return f"refused: {json.dumps(message.get('errors'))}"
            if wanted(message):
                return ""
        return f"nothing within {self.timeout:g} s"

    def receive_comment(self, comment: int) -> str:
        return self._await(
            lambda m: m.get("type") == "comment.created" and m.get("comment", {}).get("id") == comment
        )

    def close(self) -> None:
        if self.socket is not None:
            self.socket.close()
            self.socket = None


def _live_comment(journey: _Journey, watch: _LiveWatch, slug: str, path: str) -> None:
    """The comment step, watched for over the socket: the `live` step's latency is from the POST sent
    to its `comment.created` received."""
    opened = watch.open(slug)
    started = time.perf_counter()
    posted = journey.call(
        "comment",
        "POST",
        f"{path}/comments",
        {201},
        body={"comment": {"body": "Smoke comment."}},
        check=lambda r: "" if r.json().get("comment", {}).get("body") == "Smoke comment." else "comment lost",
    )
    step = Step("live", "WS", LIVE_PATH, None, "101", False, None)
    try:
        step.status = 101 if watch.upgraded else None
        if opened:
            step.detail = opened
        elif posted is None:
            step.detail = "skipped: the comment was not posted"
        else:
            step.detail = watch.receive_comment(int(posted.json()["comment"]["id"]))
            if not step.detail:
                step.ok = True
                step.latency_ms = round((time.perf_counter() - started) * 1000, 1)
            else:
                step.detail = f"comment.created not received: {step.detail}"
    finally:
        watch.close()
    journey.report.steps.append(step)


def _brief(response: httpx.Response) -> str:
    text = response.text.strip().replace("\n", " ")
    return text[:160] + ("..." if len(text) > 160 else "")


def run(
    url: str,
    *,
    internal: Internal = Internal.auto,
    host: str | None = None,
    timeout: float = 10.0,
    verify: bool = True,
) -> SmokeReport:
    import httpx

    headers = {"User-Agent": "inkwell-ops smoke"} | ({"Host": host} if host else {})
    with httpx.Client(base_url=url.rstrip("/"), timeout=timeout, headers=headers, verify=verify) as http:
        mode = resolve_internal(http, internal)
        report = SmokeReport(url=url, internal=mode)
        journey = _Journey(http, report)
        if mode is Internal.hidden:
            for path in INTERNAL:
                journey.call(f"{path} not published", "GET", path, {404})
        elif mode is Internal.exposed:
            journey.call("/metrics", "GET", "/metrics", {200, 404})
            metrics = report.steps[-1]
            # The service serves /metrics on its public port only without a metrics port of its own.
            metrics.name = "/metrics on its own port" if metrics.status == 404 else "/metrics served"
            for path in INTERNAL[1:]:
                journey.call(f"{path} served", "GET", path, {200})

        suffix = secrets.token_hex(4)
        user = {
            "username": f"smoke-{suffix}",
            "email": f"smoke-{suffix}@example.com",
            "password": secrets.token_urlsafe(12),
        }
        journey.call("register", "POST", "/api/users", {201}, body={"user": user})
        login = journey.call(
            "login",
            "POST",
            "/api/users/login",
            {200},
            body={"user": {"email": user["email"], "password": user["password"]}},
            check=lambda r: "" if r.json().get("user", {}).get("token") else "no token in the answer",
        )
        if login is None:
            for name, method, path in (
                ("publish", "POST", "/api/articles"),
                ("read", "GET", "/api/articles/{slug}"),
                ("comment", "POST", "/api/articles/{slug}/comments"),
                ("live", "WS", LIVE_PATH),
                ("delete", "DELETE", "/api/articles/{slug}"),
            ):
                journey.skip(name, method, path, "no token")
            return report
        journey.token = login.json()["user"]["token"]
        title = f"Smoke test {suffix}"
        article = {
            "title": title,
            "description": "inkwell-ops smoke",
            "body": "Written and deleted by a smoke test.",
        }
        created = journey.call(
            "publish",
            "POST",
            "/api/articles",
            {201},
            body={"article": article},
            check=lambda r: "" if r.json().get("article", {}).get("slug") else "no slug in the answer",
        )
        if created is None:
            for name, method, where in (
                ("read", "GET", "/api/articles/{slug}"),
                ("comment", "POST", "/api/articles/{slug}/comments"),
                ("live", "WS", LIVE_PATH),
                ("delete", "DELETE", "/api/articles/{slug}"),
            ):
                journey.skip(name, method, where, "no article")
            return report
        slug = created.json()["article"]["slug"]
        path = f"/api/articles/{slug}"
        journey.call(
            "read",
            "GET",
            path,
            {200},
            check=lambda r: (
                "" if r.json().get("article", {}).get("title") == title else "another title came back"
            ),
        )
        watch = _LiveWatch(url, host=host, timeout=timeout, verify=verify)
        _live_comment(journey, watch, slug, path)
        journey.call("delete", "DELETE", path, {204})
        journey.call("gone", "GET", path, {404})
    return report
