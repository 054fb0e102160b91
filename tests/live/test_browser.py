"""Live updates in a real headless Chromium (Debian's, driven by playwright, launched as
tests/docs/test_browser.py launches it): a page of its own origin on 127.0.0.1 (tests/live/live_page.html)
opens `new WebSocket(url, ["inkwell.live.v1"])` to one `inkwell serve`, subscribes to an article, and
shows a comment posted over REST to another `inkwell serve` on the same database and Redis: the
write's process publishes, the page's process delivers. The page's origin is the one allowed in
INKWELL_CORS_ORIGINS; the same page from another origin is refused before the socket opens, which
only a browser shows for certain, since it is the browser that sends Origin and will not let a page
forge it.

Every wait is playwright's, on the page's DOM, with a generous timeout; nothing is slept."""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.live.conftest import WAIT, live_env
from tests.support.redis import RedisServer
from tests.support.server import ServerProcess, migrate, running_server

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"  # scripts/bootstrap.sh --test installs it; playwright downloads nothing
TIMEOUT_MS = 30_000  # per wait: generous for a busy machine, never slept
PAGE = (Path(__file__).parent / "live_page.html").read_bytes()


@contextlib.contextmanager
def page_server() -> Iterator[str]:
    """An HTTP server on 127.0.0.1 answering every GET with the live page: an origin of its own."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(PAGE)))
            self.end_headers()
            self.wfile.write(PAGE)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Site:
    allowed: str  # the origin in INKWELL_CORS_ORIGINS
    refused: str  # another origin, the same page
    reader: ServerProcess  # the page's socket's server
    writer: ServerProcess  # where the comments are posted


@pytest.fixture(scope="module")
def site(redis: RedisServer) -> Iterator[Site]:
    with page_server() as allowed, page_server() as refused:
        env = live_env(redis, INKWELL_CORS_ORIGINS=allowed)
        migrate(env)
        with (
            running_server(env, migrate_first=False) as reader,
            running_server(env, migrate_first=False) as writer,
        ):
            yield Site(allowed, refused, reader, writer)


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


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    yield page
    context.close()


def author_and_article(server: ServerProcess) -> tuple[str, str]:
    """A new user's token and a new article's slug, over REST."""
    name = f"u{uuid.uuid4().hex[:10]}"
    with httpx.Client(base_url=server.url, timeout=WAIT) as client:
        user = client.post(
            "/api/users",
            json={"user": {"username": name, "email": f"{name}@example.com", "password": "secret-pass-1"}},
        )
        assert user.status_code == 201, user.text
        token = user.json()["user"]["token"]
        article = client.post(
            "/api/articles",
            json={"article": {"title": f"Live {name}", "description": "d", "body": "b", "tagList": []}},
            headers={"Authorization": f"Token {token}"},
        )
        assert article.status_code == 201, article.text
    return token, article.json()["article"]["slug"]


def post_comment(server: ServerProcess, token: str, slug: str, body: str) -> None:
    answer = httpx.post(
        f"{server.url}/api/articles/{slug}/comments",
        json={"comment": {"body": body}},
        headers={"Authorization": f"Token {token}"},
        timeout=WAIT,
    )
    assert answer.status_code == 201, answer.text


def open_page(page: Page, origin: str, site: Site, slug: str) -> None:
    socket = f"ws://127.0.0.1:{site.reader.port}/api/live"
    page.goto(f"{origin}/article.html?ws={socket}&topic=article:{slug}")


def test_a_page_of_an_allowed_origin_shows_a_comment_posted_to_another_process(
    page: Page, site: Site
) -> None:
    token, slug = author_and_article(site.writer)
    open_page(page, site.allowed, site, slug)
    state = page.locator("#state")
    state.filter(has_text="subscribed").wait_for()
    assert state.get_attribute("data-protocol") == "inkwell.live.v1"

    for body in ["first, from the other process", "and a second"]:
        post_comment(site.writer, token, slug, body)
        page.locator("#comments li", has_text=body).wait_for()
    assert page.locator("#comments li").all_inner_texts() == ["first, from the other process", "and a second"]
    assert state.inner_text() == "subscribed"  # still open


def test_the_same_page_from_an_origin_not_allowed_is_refused(page: Page, site: Site) -> None:
    token, slug = author_and_article(site.writer)
    open_page(page, site.refused, site, slug)
    # Refused with 403 before the handshake completes: the browser reports an abnormal close (1006),
    # and the page never opened, let alone subscribed.
    page.locator("#state", has_text="closed 1006").wait_for()
    assert page.locator("#state").get_attribute("data-protocol") is None

    # What it would have been sent is shown by a page of the allowed origin on the same article.
    allowed = page.context.new_page()
    open_page(allowed, site.allowed, site, slug)
    allowed.locator("#state", has_text="subscribed").wait_for()
    post_comment(site.writer, token, slug, "not for the refused page")
    allowed.locator("#comments li", has_text="not for the refused page").wait_for()
    assert page.locator("#comments li").count() == 0
