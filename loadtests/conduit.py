"""How the simulated users speak Conduit: checked requests named by route template, accounts, and the
articles every reader needs, created once per locust process (each worker makes its own)."""

from __future__ import annotations

import logging
import os
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gevent.lock
from locust import FastHttpUser, between

from loadtests import mix

logger = logging.getLogger(__name__)

PASSWORD = "loadtest-password"  # noqa: S105 - accounts made by and for the load test
# Every account the load test registers starts with this, so it can be told apart on staging.
PREFIX = "lt-"
WRITER_PREFIX = f"{PREFIX}writer-"
TAGS = ("python", "sre", "databases", "kubernetes", "observability", "testing", "performance", "security")
WORDS = ("latency", "throughput", "replica", "index", "query", "cache", "pool", "worker", "request", "budget")
# Which article, tag or author a user picks: not a secret; INKWELL_LOADTEST_SEED makes runs repeatable.
RNG = random.Random(os.environ.get("INKWELL_LOADTEST_SEED"))  # noqa: S311

AUTHORS_PER_PROCESS = 3
ARTICLES_PER_AUTHOR = 4
COMMENTS_PER_ARTICLE = 2

Check = Callable[[Any], str | None]


def text(words: int) -> str:
    return " ".join(RNG.choice(WORDS) for _ in range(words)).capitalize() + "."


def article_body() -> str:
    """About 1.6 KB, like the benchmark's articles."""
    return "\n\n".join(text(40) for _ in range(6))


def credentials_from_env() -> tuple[str, str] | None:
    """INKWELL_LOADTEST_EMAIL and INKWELL_LOADTEST_PASSWORD: an existing account every signed-in user
    and writer logs in as, for a staging that does not let the load test register its own."""
    email = os.environ.get("INKWELL_LOADTEST_EMAIL")
    password = os.environ.get("INKWELL_LOADTEST_PASSWORD")
    if email and password:
        return email, password
    return None


class RequestFailed(Exception):
    """A request the user's next steps depend on failed (already counted as a failure by locust)."""


@dataclass
class World:
    """What readers read: articles nobody in the load test deletes, their tags and their authors."""

    slugs: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    authors: list[str] = field(default_factory=list)
    # The articles the live listeners listen to and writers comment on most (mix.POPULAR_ARTICLES):
    # the oldest with the tag POPULAR_TAG, so every locust process of a run, and of later runs on the
    # same staging, picks the same ones whatever worlds the others built.
    popular: list[str] = field(default_factory=list)


POPULAR_TAG = "lt-popular"


_worlds: dict[str, World] = {}
_world_lock = gevent.lock.Semaphore()


class ConduitUser(FastHttpUser):
    """A Conduit client: every request named by its route template and checked, body included."""

    abstract = True
    wait_time = between(*mix.THINK_SECONDS)

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self.token: str | None = None
        self.username: str | None = None
        self.is_set_up = False

    def on_start(self) -> None:
        # A failed request in setup is counted, and tried again after a think, never kills the user.
        while not self._try_setup():
            self.wait()

    def setup(self) -> None:
        """What a user does once before its tasks (sign in, follow); RequestFailed: try again later."""

    def _try_setup(self) -> bool:
        try:
            self.world  # noqa: B018 - the first user of this process creates the articles all read
            self.setup()
        except RequestFailed:
            logger.warning("setup of %s failed; trying again", type(self).__name__)
            return False
        self.is_set_up = True
        return True

    # -- requests -------------------------------------------------------------------------------

    def call(
        self,
        method: str,
        path: str,
        *,
        name: str,
        expect: int = 200,
        json: Any = None,
        signed_in: bool = True,
        check: Check | None = None,
    ) -> Any:
        """Sends the request; a status other than `expect`, a body that is not JSON or that `check`
        rejects (it returns what is wrong) is a failure. Returns the parsed body, None on failure."""
        headers = {"Authorization": f"Token {self.token}"} if signed_in and self.token else {}
        with self.client.request(
            method, path, name=name, json=json, headers=headers, catch_response=True
        ) as response:
            if response.status_code != expect:
                response.failure(
                    f"status {response.status_code}, expected {expect}: {(response.text or '')[:200]}"
                )
                return None
            if expect == 204:
                response.success()
                return {}
            try:
                body = response.json()
            except ValueError:
                response.failure(f"not JSON: {(response.text or '')[:200]}")
                return None
            try:
                problem = check(body) if check else None
            except (KeyError, TypeError, IndexError, AttributeError) as error:
                problem = f"unexpected body ({error!r}): {(response.text or '')[:200]}"
            if problem:
                response.failure(problem)
                return None
            response.success()
            return body

    def need(self, body: Any) -> Any:
        if body is None:
            raise RequestFailed
        return body

    # -- accounts -------------------------------------------------------------------------------

    def register(self, prefix: str) -> None:
        username = f"{prefix}{uuid.uuid4().hex[:16]}"
        user = {"username": username, "email": f"{username}@example.com", "password": PASSWORD}
        body = self.need(
            self.call(
                "POST",
                "/api/users",
                name="/api/users",
                expect=201,
                json={"user": user},
                signed_in=False,
                check=lambda b: None if b["user"]["username"] == username else "another user came back",
            )
        )
        self.token, self.username = body["user"]["token"], username

    def login(self, email: str, password: str) -> None:
        body = self.need(
            self.call(
                "POST",
                "/api/users/login",
                name="/api/users/login",
                signed_in=False,
                json={"user": {"email": email, "password": password}},
                check=lambda b: None if b["user"]["token"] else "no token",
            )
        )
        self.token, self.username = body["user"]["token"], body["user"]["username"]

    def sign_in(self, prefix: str) -> None:
        """Logs in with the environment's credentials when given, else registers a fresh account."""
        credentials = credentials_from_env()
        if credentials:
            self.login(*credentials)
        else:
            self.register(prefix)

    # -- the shared articles --------------------------------------------------------------------

    @property
    def world(self) -> World:
        """The articles of this locust process, created by the first user that asks."""
        assert self.host is not None
        with _world_lock:
            world = _worlds.get(self.host)
            if world is None:
                world = _worlds[self.host] = self._build_world()
        return world

    def _build_world(self) -> World:
        world = World()
        token, username = self.token, self.username
        try:
            credentials = credentials_from_env()
            if credentials:
                self.login(*credentials)
                accounts = [(self.token, self.username)]
            else:
                accounts = []
                for _ in range(AUTHORS_PER_PROCESS):
                    self.register(f"{PREFIX}author-")
                    accounts.append((self.token, self.username))
            for author_token, author in accounts:
                self.token = author_token
                world.authors.append(str(author))
                for _ in range(ARTICLES_PER_AUTHOR):
                    tags = RNG.sample(TAGS, RNG.randint(1, 3))
                    # Candidates for the popular articles: only the oldest ones of a staging become it.
                    popular = len(world.slugs) < mix.POPULAR_ARTICLES
                    world.slugs.append(self.need(self.publish([*tags, POPULAR_TAG] if popular else tags)))
                    world.tags.extend(tag for tag in tags if tag not in world.tags)
            for slug in world.slugs:
                for _ in range(COMMENTS_PER_ARTICLE):
                    self.token = RNG.choice(accounts)[0]
                    self.need(self.comment(slug))
            # Articles that were there already (a seeded staging) are read too, but not the writers':
            # they delete theirs.
            listed = self.call(
                "GET", "/api/articles?limit=50&offset=0", name="/api/articles", signed_in=False
            )
            for article in (listed or {}).get("articles", []):
                theirs = article["author"]["username"].startswith(WRITER_PREFIX)
                if not theirs and article["slug"] not in world.slugs:
                    world.slugs.append(article["slug"])
            world.popular = self._oldest_popular() or world.slugs[: mix.POPULAR_ARTICLES]
        finally:
            self.token, self.username = token, username
        logger.info("load test data: %d articles by %d authors", len(world.slugs), len(world.authors))
        return world

    def _oldest_popular(self) -> list[str]:
        """The oldest articles tagged POPULAR_TAG (the list is newest first: the last page of it)."""
        path = f"/api/articles?tag={POPULAR_TAG}"
        first = self.need(self.call("GET", f"{path}&limit=1&offset=0", name="/api/articles?tag=[tag]"))
        offset = max(0, int(first["articlesCount"]) - mix.POPULAR_ARTICLES)
        page = f"{path}&limit={mix.POPULAR_ARTICLES}&offset={offset}"
        last = self.need(self.call("GET", page, name="/api/articles?tag=[tag]"))
        return [article["slug"] for article in last["articles"]]

    # -- writes used by setup and by writers ----------------------------------------------------

    def publish(self, tags: list[str]) -> str | None:
        """Publishes an article; its slug, None if that failed."""
        title = f"Load test {uuid.uuid4().hex[:12]}"
        article = {"title": title, "description": text(8), "body": article_body(), "tagList": tags}
        body = self.call(
            "POST",
            "/api/articles",
            name="/api/articles",
            expect=201,
            json={"article": article},
            check=lambda b: None if b["article"]["title"] == title else "another article came back",
        )
        return str(body["article"]["slug"]) if body else None

    def comment(self, slug: str, words: str | None = None) -> int | None:
        """Comments on the article (`words`, or some text); the comment's id, None if that failed."""
        words = words or text(12)
        body = self.call(
            "POST",
            f"/api/articles/{slug}/comments",
            name="/api/articles/[slug]/comments",
            expect=201,
            json={"comment": {"body": words}},
            check=lambda b: None if b["comment"]["body"] == words else "another comment came back",
        )
        return int(body["comment"]["id"]) if body else None
