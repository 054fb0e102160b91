"""The hot statements read a page, not the data: their PostgreSQL plans, on a seeded database.

The benchmark's 10k data set (bench/scale_data.py) is enough for the planner to choose as it does
at a million rows for these shapes. Each statement is the repository's own, EXPLAIN ANALYZEd with
the parameters an endpoint gives it, and its plan must not scan a large table sequentially, not
sort more than the page, and touch (rows x loops over every scan) no more than a page's worth, so
a later change cannot bring back the cost that grew with the data (issue 13) unnoticed.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import argon2
import asyncpg
import pytest
from sqlalchemy import Select, make_url
from sqlalchemy.dialects import postgresql

from bench import scale_data
from service import dialects
from service.articles import repository as articles
from service.articles.schemas import ArticleFilter
from service.comments import repository as comments
from service.users import repository as users
from tests.conftest import PostgresServer

pytestmark = pytest.mark.anyio

SIZE = scale_data.SMALL
LIMIT = 20
# Tables that grow with the data; `tags` and `counters` stay small.
LARGE_TABLES = {"articles", "article_tags", "favorites", "comments", "follows", "users"}
# Rows x loops over every scan node, for one page of 20: the ids, the articles and their authors,
# three tags each, and the EXISTS probes of the signed-in flags. A plan that reads every matching
# row reads thousands here (the `popular` tag alone is on 1,000 articles).
PAGE_BUDGET = 20 * LIMIT


@pytest.fixture(scope="module")
def seeded(postgres: PostgresServer) -> Iterator[str]:
    url = postgres.create_database("inkwell_plans")
    password_hash = argon2.PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash("x")

    async def fill(connection: asyncpg.Connection) -> None:
        await connection.execute(scale_data.fill_sql(SIZE, password_hash))
        await connection.execute("VACUUM ANALYZE")

    _run(url, fill)
    try:
        yield url
    finally:
        postgres.drop_database(url)


def _run(url: str, work: Any) -> Any:
    import asyncio
    import concurrent.futures

    async def main() -> Any:
        parts = make_url(url)
        connection = await asyncpg.connect(
            host=parts.host,
            port=parts.port,
            user=parts.username,
            password=parts.password,
            database=parts.database,
        )
        try:
            return await work(connection)
        finally:
            await connection.close()

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, main()).result()


@pytest.fixture
async def explain(seeded: str) -> AsyncIterator[Any]:
    def plan(statement: Select[Any], params: dict[str, Any]) -> dict[str, Any]:
        sql = str(
            statement.params(**params).compile(
                dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}
            )
        )

        async def run(connection: asyncpg.Connection) -> Any:
            return await connection.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}")

        return dict(json.loads(_run(seeded, run))[0]["Plan"])

    return plan


def nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from nodes(child)


def outline(plan: dict[str, Any], depth: int = 0) -> str:
    """The plan as EXPLAIN's text shows it, node by node, with rows x loops: the failure's message."""
    where = plan.get("Relation Name") or plan.get("Index Name") or ""
    line = (
        f"{'  ' * depth}{plan['Node Type']} {where} rows={plan['Actual Rows']} loops={plan['Actual Loops']}"
    )
    return "\n".join([line, *(outline(child, depth + 1) for child in plan.get("Plans", []))])


def touched(plan: dict[str, Any]) -> int:
    """Rows x loops over every node that reads a large table (or its index)."""
    return sum(
        int(node["Actual Rows"]) * int(node["Actual Loops"])
        for node in nodes(plan)
        if node.get("Relation Name") in LARGE_TABLES
    )


def assert_reads_a_page(plan: dict[str, Any], *, budget: int = PAGE_BUDGET, skipped: int = 0) -> None:
    for node in nodes(plan):
        if node["Node Type"] == "Seq Scan":
            assert node["Relation Name"] not in LARGE_TABLES, f"sequential scan:\n{outline(plan)}"
        if node["Node Type"] in {"Sort", "Incremental Sort"}:
            sorted_rows = max(int(child["Actual Rows"]) for child in node["Plans"])
            assert sorted_rows <= LIMIT + skipped, f"sorts {sorted_rows} rows:\n{outline(plan)}"
    assert touched(plan) <= budget + skipped, f"touches {touched(plan)} rows:\n{outline(plan)}"


LISTS = {
    "all": ArticleFilter(),
    "tag": ArticleFilter(tag="popular"),
    "author": ArticleFilter(author="prolific"),
    "favorited": ArticleFilter(favorited="fan"),
}


@pytest.mark.parametrize("signed_in", [False, True], ids=["anonymous", "signed-in"])
@pytest.mark.parametrize("name", list(LISTS))
async def test_a_list_page_reads_the_page_and_its_total_from_kept_counts(
    explain: Any, name: str, signed_in: bool
) -> None:
    filters = LISTS[name]
    shape = articles._shape(filters)
    query = articles._page_query(dialects.POSTGRESQL, shape, signed_in)
    params = articles._params(filters, limit=LIMIT, offset=0)
    budget = PAGE_BUDGET
    if signed_in:
        params["viewer_id"] = scale_data.READER
        # `following` may be answered from the reader's follows read once (a hashed subplan):
        # as many rows as the reader follows, whatever the size of the site.
        budget += scale_data.FOLLOWED_BY_READER
    plan = explain(query, params)
    assert_reads_a_page(plan, budget=budget)
    assert plan["Actual Rows"] == LIMIT


@pytest.mark.parametrize("name", list(LISTS))
async def test_a_deep_offset_skips_ids_in_one_index_without_building_the_skipped_rows(
    explain: Any, name: str
) -> None:
    filters, offset = LISTS[name], 80
    query = articles._page_query(dialects.POSTGRESQL, articles._shape(filters), False)
    plan = explain(query, articles._params(filters, limit=LIMIT, offset=offset))
    assert_reads_a_page(plan, skipped=offset)
    # The skipped rows are only ids: the articles table is read for the page alone.
    article_reads = [
        int(node["Actual Rows"]) * int(node["Actual Loops"])
        for node in nodes(plan)
        if node.get("Relation Name") == "articles" and node["Node Type"] != "Index Only Scan"
    ]
    assert sum(article_reads) <= LIMIT


async def test_a_combination_of_filters_reads_what_the_first_filter_matches(explain: Any) -> None:
    filters = ArticleFilter(tag="popular", author="prolific")
    query = articles._page_query(dialects.POSTGRESQL, articles._shape(filters), False)
    plan = explain(query, articles._params(filters, limit=LIMIT, offset=0))
    # Counted, not kept: bounded by the tag's 1,000 articles, never a scan of all of them.
    for node in nodes(plan):
        if node["Node Type"] == "Seq Scan":
            assert node["Relation Name"] not in LARGE_TABLES


async def test_the_tags_are_read_from_their_counts(explain: Any) -> None:
    for query, params in (
        (articles._MOST_USED_TAGS, {"most_used": articles.TAGS_MOST_USED}),
        (articles._RECENTLY_USED_TAGS, {"recently_used": articles.TAGS_RECENTLY_USED}),
    ):
        plan = explain(query, params)
        assert not any(node.get("Relation Name") == "article_tags" for node in nodes(plan))
        assert touched(plan) <= articles.TAGS_MOST_USED + SIZE.tags


async def test_a_page_of_comments_reads_the_page(explain: Any) -> None:
    hot = SIZE.articles // 2
    query = comments._page(viewer_id=scale_data.READER).params(article_id=hot, limit=LIMIT, offset=0)
    plan = explain(query, {})
    assert_reads_a_page(plan, budget=PAGE_BUDGET + scale_data.FOLLOWED_BY_READER)


async def test_a_login_by_username_reads_one_row_from_the_index_in_any_case(explain: Any) -> None:
    # /api/token's username lookup compares lower(username): the index of migration 0003 serves it.
    plan = explain(users.BY_USERNAME_IN_ANY_CASE, {"username": "FAN"})
    assert {node.get("Index Name") for node in nodes(plan)} >= {"uq_users_username_lower"}, outline(plan)
    assert not any(node["Node Type"] == "Seq Scan" for node in nodes(plan)), outline(plan)
    assert plan["Actual Rows"] == 1
