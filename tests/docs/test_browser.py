"""The documentation pages in a real headless Chromium (Debian's, driven by playwright), against a real
`inkwell serve`, with every request to anything but 127.0.0.1 blocked as a cluster without internet
would: Swagger UI renders, Authorize logs in through the OAuth2 password flow with a registered
user, the authorization survives a reload, and "Try it out" on `GET /api/user` answers 200; ReDoc
renders. No request leaves 127.0.0.1, and the pages run under their Content-Security-Policy with
nothing refused."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Route, sync_playwright

from tests.support.server import ServerProcess, running_server, server_env

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"  # scripts/bootstrap.sh --test installs it; playwright downloads nothing
TIMEOUT_MS = 20_000  # per wait: generous for a busy machine, never slept


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    with running_server(server_env()) as server:
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        # --no-sandbox: the suite runs as root, where Chromium's sandbox refuses to start; a container's
        # /dev/shm is often too small for it.
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        yield browser
        browser.close()


@dataclass
class Watched:
    """What a page tried to fetch elsewhere, and what its console said was refused or broke."""

    page: Page
    outside: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def assert_clean(self, *, refused_images_from: str | None = None) -> None:
        assert self.outside == [], "requests outside 127.0.0.1"
        problems = self.problems
        if refused_images_from is not None:
            # A cosmetic image the page's CSP refused before any request was made for it.
            problems = [
                problem
                for problem in problems
                if not (
                    problem.startswith(f"Loading the image '{refused_images_from}") and "img-src" in problem
                )
            ]
        assert problems == [], "errors or CSP refusals on the page"


@pytest.fixture
def watched(browser: Browser) -> Iterator[Watched]:
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    seen = Watched(page)

    def route(route: Route) -> None:
        url = route.request.url
        if urlsplit(url).hostname == "127.0.0.1":
            route.continue_()
        else:
            seen.outside.append(url)
            route.abort()

    def console(message: ConsoleMessage) -> None:
        if message.type == "error" or "Content Security Policy" in message.text:
            seen.problems.append(message.text)

    page.route("**/*", route)
    page.on("console", console)
    page.on("pageerror", lambda error: seen.problems.append(f"uncaught: {error}"))
    yield seen
    context.close()


def register(server: ServerProcess, username: str) -> tuple[str, str]:
    email, password = f"{username}@example.org", "a-password-for-the-docs"
    response = httpx.post(
        f"{server.url}/api/users",
        json={"user": {"username": username, "email": email, "password": password}},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    return email, password


def test_swagger_ui_works_offline_logs_in_and_tries_get_user(server: ServerProcess, watched: Watched) -> None:
    email, password = register(server, "docsreader")
    page = watched.page
    page.goto(f"{server.url}/docs")
    page.wait_for_selector(".swagger-ui .info .title:has-text('Inkwell')")

    # Authorize: the OAuth2 password flow, which posts the form to /api/token.
    page.click(".auth-wrapper .btn.authorize")
    page.fill("#oauth_username", email)
    page.fill("#oauth_password", password)
    with page.expect_response(lambda response: response.url.endswith("/api/token")) as token:
        page.click(".auth-btn-wrapper .btn.modal-btn.authorize")
    assert token.value.status == 200
    page.wait_for_selector(".auth-container button[aria-label='Remove authorization']:has-text('Logout')")
    page.click(".auth-container .btn-done")

    # persistAuthorization: the token is still there after a reload.
    page.reload()
    operation = page.locator(".opblock-get:has(.opblock-summary-path[data-path='/api/user'])")
    operation.locator(".opblock-summary").click()
    operation.locator(".try-out__btn").click()
    with page.expect_response(lambda response: urlsplit(response.url).path == "/api/user") as answer:
        operation.locator(".execute").click()
    assert answer.value.status == 200
    assert answer.value.request.headers["authorization"].startswith("Bearer ")
    status = operation.locator(".live-responses-table tbody .response-col_status")
    status.wait_for()
    assert status.inner_text().strip() == "200"
    assert (
        "docsreader"
        in operation.locator(".live-responses-table tbody .response-col_description").inner_text()
    )
    watched.assert_clean()


def test_redoc_renders_offline(server: ServerProcess, watched: Watched) -> None:
    page = watched.page
    page.goto(f"{server.url}/redoc")
    page.wait_for_selector(".api-info h1:has-text('Inkwell')")
    # Its menu lists the operations it read from /openapi.json.
    page.wait_for_selector("[data-item-id$='/operation/GetCurrentUser']", state="attached")
    # And the operation's own section, drawn from the spec.
    page.wait_for_selector("[data-section-id$='/operation/GetCurrentUser'] h2:has-text('Get current user')")
    # ReDoc's "API docs by Redocly" logo is an image on its CDN: refused by the CSP, never fetched.
    watched.assert_clean(refused_images_from="https://cdn.redoc.ly/")
