"""A user's journey through the public API after a deploy (register, log in, publish, read, comment,
delete), plus the check that internal endpoints are not published, with each step's status and latency."""

from __future__ import annotations

import ipaddress
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

import httpx

INTERNAL = ("/metrics", "/healthz", "/readyz")


class Internal(StrEnum):
    auto = "auto"  # hidden through an ingress, exposed when the URL is the service itself on loopback
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


def resolve_internal(url: str, internal: Internal) -> Internal:
    if internal is not Internal.auto:
        return internal
    host = urlsplit(url).hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    # `make run` or a port-forward serves everything; anything else is taken to be the ingress.
    return Internal.exposed if loopback else Internal.hidden


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
        try:
            response = self.http.request(method, path, json=body, headers=headers)
        except httpx.HTTPError as exc:
            self.report.steps.append(
                Step(name, method, path, None, wanted, False, None, f"{type(exc).__name__}: {exc}")
            )
            return None
        latency = (time.perf_counter() - started) * 1000
        problem = "" if response.status_code in expected else _brief(response)
        if not problem and check is not None:
            problem = check(response)
        self.report.steps.append(
            Step(name, method, path, response.status_code, wanted, not problem, round(latency, 1), problem)
        )
        return None if problem else response

    def skip(self, name: str, method: str, path: str, why: str) -> None:
        self.report.steps.append(Step(name, method, path, None, "-", False, None, f"skipped: {why}"))


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
    mode = resolve_internal(url, internal)
    report = SmokeReport(url=url, internal=mode)
    headers = {"User-Agent": "inkwell-ops smoke"} | ({"Host": host} if host else {})
    with httpx.Client(base_url=url.rstrip("/"), timeout=timeout, headers=headers, verify=verify) as http:
        journey = _Journey(http, report)
        if mode is Internal.hidden:
            for path in INTERNAL:
                journey.call(f"{path} not published", "GET", path, {404})
        elif mode is Internal.exposed:
            for path in INTERNAL:
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
            for name, method in (("read", "GET"), ("comment", "POST"), ("delete", "DELETE")):
                journey.skip(name, method, "/api/articles/{slug}", "no article")
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
        journey.call(
            "comment",
            "POST",
            f"{path}/comments",
            {201},
            body={"comment": {"body": "Smoke comment."}},
            check=lambda r: (
                "" if r.json().get("comment", {}).get("body") == "Smoke comment." else "comment lost"
            ),
        )
        journey.call("delete", "DELETE", path, {204})
        journey.call("gone", "GET", path, {404})
    return report
