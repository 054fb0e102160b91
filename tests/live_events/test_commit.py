"""Events leave only once their unit of work has committed, once, stamped with the commit's time and
the writing request's trace: a write that rolls back (refused before the commit, failing on a
constraint, raising after the emit), a savepoint that rolls back, and the failed first try of a
write retried by its client publish nothing of theirs; a bus that cannot take them is logged and
the write stays a success."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from service.config import Settings
from service.db import Database, UnitOfWork
from service.errors import ConduitError, Conflict, ServiceUnavailable
from service.live import events as live
from service.live.commit import PublishOnCommit
from service.live.events import LiveUnavailable
from service.main import create_app
from service.models import Comment, Tag
from service.observability import tracing
from tests.conftest import on_test_transaction
from tests.factories import Account, create_article, create_comment, create_user
from tests.live_events.conftest import Recording, record_events
from tests.support.asgi import asgi_client

pytestmark = pytest.mark.anyio


class RefuseFirst:
    """A commit hook that refuses the first commit it sees with `error` (as the cache's does while
    Redis is down, or a concurrent change does with a 409), and lets the later ones through."""

    def __init__(self, error: ConduitError) -> None:
        self.error: ConduitError | None = error

    async def before_commit(self, uow: UnitOfWork) -> None:
        error, self.error = self.error, None
        if error is not None:
            raise error

    async def after_commit(self, uow: UnitOfWork) -> None:
        return None


async def _article_with_reader(client: httpx.AsyncClient) -> tuple[str, Account]:
    author = await create_user(client)
    reader = await create_user(client)
    return (await create_article(client, author))["slug"], reader


async def _stored_comments(db: AsyncSession, body: str) -> int:
    return len((await db.execute(select(Comment.id).where(Comment.body == body))).all())


async def test_a_write_refused_at_its_commit_publishes_nothing(
    client: httpx.AsyncClient, live_app: Any, db: AsyncSession, published: Recording
) -> None:
    slug, reader = await _article_with_reader(client)
    published.take()
    live_app.state.database.on_commit(RefuseFirst(ServiceUnavailable("cache")))
    refused = await client.post(
        f"/api/articles/{slug}/comments", json={"comment": {"body": "never"}}, headers=reader.headers
    )
    assert refused.status_code == 503, refused.text
    assert await _stored_comments(db, "never") == 0
    assert published.take() == []


async def test_a_write_its_client_retries_publishes_once(
    client: httpx.AsyncClient, live_app: Any, published: Recording
) -> None:
    slug, reader = await _article_with_reader(client)
    published.take()
    live_app.state.database.on_commit(RefuseFirst(Conflict({"request": ["conflicts; retry"]})))
    path, body = f"/api/articles/{slug}/comments", {"comment": {"body": "once"}}
    assert (await client.post(path, json=body, headers=reader.headers)).status_code == 409
    retried = await client.post(path, json=body, headers=reader.headers)
    assert retried.status_code == 201, retried.text
    # The first try's unit rolled back with its event; the retry is a unit of its own.
    assert len(published.batches) == 1
    events = published.take()
    assert [event.type for event in events] == [live.COMMENT_CREATED, live.ARTICLE_COMMENTED]
    assert {event.data["comment"]["id"] for event in events} == {retried.json()["comment"]["id"]}


def _deleted(uow: UnitOfWork, slug: str) -> None:
    uow.emit(live.article_topic(slug), live.ARTICLE_DELETED, {"article": {"slug": slug}})


async def _add_tag(uow: UnitOfWork, name: str) -> None:
    await uow.write(insert(Tag).values(name=name))


async def test_an_error_after_the_emit_publishes_nothing(live_app: Any, published: Recording) -> None:
    database: Database = live_app.state.database

    async def fails_after_emitting() -> None:
        async with database.unit_of_work(writable=True) as uow:
            await _add_tag(uow, f"t{secrets.token_hex(4)}")
            _deleted(uow, "gone")
            raise RuntimeError("the service failed after it emitted")

    with pytest.raises(RuntimeError):
        await fails_after_emitting()
    assert published.attempts == 0


async def test_a_constraint_failure_publishes_nothing(live_app: Any, published: Recording) -> None:
    database: Database = live_app.state.database
    name = f"t{secrets.token_hex(4)}"
    async with database.unit_of_work(writable=True) as uow:
        await _add_tag(uow, name)

    async def takes_the_name_again() -> None:
        async with database.unit_of_work(writable=True) as uow:
            _deleted(uow, "a")
            await _add_tag(uow, name)  # tag names are unique

    with pytest.raises(Conflict):
        await takes_the_name_again()
    assert published.attempts == 0


async def test_a_savepoint_that_rolls_back_takes_its_events_with_it(
    live_app: Any, published: Recording
) -> None:
    database: Database = live_app.state.database
    taken = f"t{secrets.token_hex(4)}"
    async with database.unit_of_work(writable=True) as uow:
        await _add_tag(uow, taken)

    async def in_a_savepoint(uow: UnitOfWork, slug: str, name: str) -> None:
        async with uow.savepoint():
            _deleted(uow, slug)
            await _add_tag(uow, name)

    async with database.unit_of_work(writable=True) as uow:
        _deleted(uow, "kept")
        await in_a_savepoint(uow, "saved", f"t{secrets.token_hex(4)}")
        with pytest.raises(IntegrityError):
            await in_a_savepoint(uow, "undone", taken)
        _deleted(uow, "after")
    assert [event.topic for event in published.events] == [
        live.article_topic("kept"),
        live.article_topic("saved"),
        live.article_topic("after"),
    ]


async def test_events_are_stamped_with_their_commits_time(
    client: httpx.AsyncClient, published: Recording
) -> None:
    slug, reader = await _article_with_reader(client)
    published.take()
    before = time.time()
    await create_comment(client, reader, slug)
    after = time.time()
    events = published.take()
    assert len(events) == 2
    assert {event.committed_at for event in events} == {events[0].committed_at}
    assert before <= events[0].committed_at <= after


@pytest.mark.parametrize("failure", [LiveUnavailable("redis: connection refused"), RuntimeError("a bug")])
async def test_a_bus_that_refuses_the_events_leaves_the_write_a_success(
    client: httpx.AsyncClient,
    db: AsyncSession,
    published: Recording,
    failure: Exception,
    capsys: pytest.CaptureFixture[str],
) -> None:
    slug, reader = await _article_with_reader(client)
    published.take()
    published.refuse = failure
    capsys.readouterr()
    answer = await client.post(
        f"/api/articles/{slug}/comments", json={"comment": {"body": "durable"}}, headers=reader.headers
    )
    assert answer.status_code == 201, answer.text
    # The log's JSON lines (service.observability.logging), on stdout.
    logs = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert await _stored_comments(db, "durable") == 1
    listed = (await client.get(f"/api/articles/{slug}/comments")).json()["comments"]
    assert [comment["body"] for comment in listed] == ["durable"]
    (logged,) = [log for log in logs if log.get("count") is not None]
    assert logged["event"].startswith("live events not published")
    assert logged["count"] == 2
    assert logged["types"] == {live.ARTICLE_COMMENTED: 1, live.COMMENT_CREATED: 1}
    assert logged["logger"] == "inkwell.live"
    assert logged["level"] == ("warning" if isinstance(failure, LiveUnavailable) else "error")
    # And nothing of the write's reached the bus later either.
    assert published.batches == []


@pytest.fixture
async def traced_client(
    settings: Settings,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    published: Recording,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[httpx.AsyncClient]:
    """The app with request spans from a tracer provider of the test's own (no exporter): as
    tracing on does it, without the process-wide provider and SQL spans on the suite's engine."""
    provider = TracerProvider()
    monkeypatch.setattr(tracing, "server_spans", lambda: tracing.ServerSpans(provider.get_tracer("test")))
    app = on_test_transaction(create_app(settings, engine=engine), sessionmaker)
    record_events(app, published)
    async with asgi_client(app) as client:
        yield client


async def test_events_carry_the_trace_context_of_the_request_that_wrote_them(
    traced_client: httpx.AsyncClient, published: Recording
) -> None:
    slug, reader = await _article_with_reader(traced_client)
    published.take()
    trace_id, upstream = secrets.token_hex(16), secrets.token_hex(8)
    headers = {**reader.headers, "traceparent": f"00-{trace_id}-{upstream}-01", "baggage": "user=secret"}
    answer = await traced_client.post(
        f"/api/articles/{slug}/comments", json={"comment": {"body": "traced"}}, headers=headers
    )
    assert answer.status_code == 201, answer.text
    events = published.take()
    assert len(events) == 2
    for event in events:
        assert set(event.trace) == {"traceparent"}
        version, traced, span, flags = event.trace["traceparent"].split("-")
        # The request's server span, a child of the upstream one, in the upstream's trace.
        assert (version, traced, flags) == ("00", trace_id, "01")
        assert span != upstream
    # Without a traceparent the request starts a trace of its own, and its events carry it.
    await create_comment(traced_client, reader, slug)
    assert all(event.trace["traceparent"].split("-")[1] != trace_id for event in published.take())


async def test_a_units_events_leave_once_even_were_the_hook_run_twice(
    live_app: Any, published: Recording
) -> None:
    database: Database = live_app.state.database
    # The same hook registered a second time (a wiring mistake) runs twice on the same unit.
    database.on_commit(PublishOnCommit(published))
    async with database.unit_of_work(writable=True) as uow:
        await _add_tag(uow, f"t{secrets.token_hex(4)}")
        _deleted(uow, "once")
    assert published.attempts == 1
    assert [event.topic for event in published.events] == [live.article_topic("once")]
