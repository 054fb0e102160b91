"""The unit of work: what every write touched is recorded as the repositories write it, and the hooks
around its commit run once, in order, and never for a write that rolled back."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import Column, Integer, MetaData, Table, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from service.articles import repository as articles
from service.db import Database, UnitOfWork
from service.errors import Conflict, ServiceUnavailable
from service.models import Tag
from service.users import repository as users
from tests.factories import create_article, create_user

pytestmark = pytest.mark.anyio


class Recorder:
    """A commit hook that notes what it saw, and fails where it is told to."""

    def __init__(self, events: list[str], *, fail_before: bool = False, fail_after: bool = False) -> None:
        self.events = events
        self.fail_before = fail_before
        self.fail_after = fail_after
        self.changes: list[dict[str, frozenset[str] | None]] = []

    async def before_commit(self, uow: UnitOfWork) -> None:
        self.events.append("before")
        self.changes.append(dict(uow.changes.items()))
        if self.fail_before:
            raise ServiceUnavailable("search")

    async def after_commit(self, uow: UnitOfWork) -> None:
        self.events.append("after")
        if self.fail_after:
            raise RuntimeError("the broker is gone")


async def tag_count(database: Database) -> int:
    async with database.unit_of_work(writable=False) as uow:
        return int((await uow.read.rows(select(func.count()).select_from(Tag))).scalar_one())


async def test_hooks_and_callbacks_run_around_the_commit_in_order(app: FastAPI) -> None:
    database: Database = app.state.database
    events: list[str] = []
    hook = Recorder(events)
    database.on_commit(hook)
    async with database.unit_of_work(writable=True) as uow:
        await uow.write(insert(Tag).values(name="ordered"))
        uow.after_commit(lambda: events.append("callback"))
        events.append("work")
    assert events == ["work", "before", "callback", "after"]
    assert hook.changes == [{"tags": None}]


async def test_a_write_that_rolls_back_runs_no_after_commit_step(app: FastAPI) -> None:
    database: Database = app.state.database
    events: list[str] = []
    database.on_commit(Recorder(events))

    async def write_then_fail() -> None:
        async with database.unit_of_work(writable=True) as uow:
            await uow.write(insert(Tag).values(name="rolled-back"))
            uow.after_commit(lambda: events.append("callback"))
            raise KeyError("a bug after the write")

    with pytest.raises(KeyError):
        await write_then_fail()
    assert events == []
    assert await tag_count(database) == 0


async def test_a_hook_that_cannot_do_its_part_before_the_commit_refuses_the_write(app: FastAPI) -> None:
    database: Database = app.state.database
    events: list[str] = []
    database.on_commit(Recorder(events, fail_before=True))

    async def write() -> None:
        async with database.unit_of_work(writable=True) as uow:
            await uow.write(insert(Tag).values(name="refused"))
            uow.after_commit(lambda: events.append("callback"))

    with pytest.raises(ServiceUnavailable):
        await write()
    assert events == ["before"]
    assert await tag_count(database) == 0


async def test_a_failure_after_the_commit_is_logged_and_the_write_stands(app: FastAPI) -> None:
    database: Database = app.state.database
    events: list[str] = []
    database.on_commit(Recorder(events, fail_after=True))
    database.on_commit(Recorder(events))

    def failing_callback() -> None:
        raise RuntimeError("a counter that broke")

    async with database.unit_of_work(writable=True) as uow:
        await uow.write(insert(Tag).values(name="durable"))
        uow.after_commit(failing_callback)
    # Every step still ran, once: the first failure did not stop the second hook.
    assert events == ["before", "before", "after", "after"]
    assert await tag_count(database) == 1


async def test_repositories_record_which_articles_each_write_touched(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    author = await create_user(client)
    slug = (await create_article(client, author, tags=["kept"]))["slug"]
    database: Database = app.state.database
    async with database.unit_of_work(writable=True) as uow:
        found = await articles.find_for_edit(uow, slug)
        assert found is not None
        await articles.update_fields(uow, found.id, slug=slug, values={"slug": "renamed", "title": "Renamed"})
        await articles.set_tags(uow, found.id, ["new"], slug="renamed", created_at=found.created_at)
        changes = dict(uow.changes.items())
    assert changes == {
        "articles": frozenset({slug, "renamed"}),
        "article_tags": frozenset({"renamed"}),
        "tags": frozenset({"renamed"}),
    }


async def test_entities_changed_without_saving_are_written_and_recorded_at_the_commit(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    account = await create_user(client)
    database: Database = app.state.database
    hook = Recorder([])
    database.on_commit(hook)
    async with database.unit_of_work(writable=True) as uow:
        user = await users.get_by_username(uow, account.username)
        assert user is not None
        user.bio = "set, never saved explicitly"
    assert hook.changes == [{"users": None}]
    async with database.unit_of_work(writable=False) as uow:
        user = await users.get_by_username(uow, account.username)
        assert user is not None
        assert user.bio == "set, never saved explicitly"


async def test_a_deadlock_with_a_concurrent_transaction_is_a_409_to_retry(engine: AsyncEngine) -> None:
    """Two transactions that lock two rows in opposite orders: PostgreSQL gives one up (40P01)."""
    table = f"deadlock_probe_{uuid.uuid4().hex[:8]}"
    async with engine.begin() as setup:
        await setup.execute(text(f"CREATE TABLE {table} (id int PRIMARY KEY, n int)"))
        await setup.execute(text(f"INSERT INTO {table} VALUES (1, 0), (2, 0)"))
    database = Database(engine)
    probe = Table(table, MetaData(), Column("id", Integer, primary_key=True), Column("n", Integer))

    async def lock(first: int, second: int, started: asyncio.Event, other: asyncio.Event) -> None:
        async with database.unit_of_work(writable=True) as uow:
            await uow.write(update(probe).where(probe.c.id == first).values(n=probe.c.n + 1))
            started.set()
            await other.wait()
            await uow.write(update(probe).where(probe.c.id == second).values(n=probe.c.n + 1))

    try:
        one, two = asyncio.Event(), asyncio.Event()
        results = await asyncio.gather(lock(1, 2, one, two), lock(2, 1, two, one), return_exceptions=True)
        failures = [r for r in results if isinstance(r, Exception)]
        assert len(failures) == 1
        assert isinstance(failures[0], Conflict)
        assert failures[0].errors == {"request": ["conflicts with a concurrent change; retry"]}
    finally:
        async with engine.begin() as cleanup:
            await cleanup.execute(text(f"DROP TABLE {table}"))
