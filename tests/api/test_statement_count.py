"""Reading articles and comments costs a fixed number of SQL statements, however many rows: no N+1."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from service import dialects
from service.articles import repository
from tests.factories import Account, create_article, create_comment, create_user, favorite, follow

pytestmark = pytest.mark.anyio

PAGE_SIZES = (1, 10, 30, 100)
ARTICLES = 30
# One SELECT: the page with its authors, tags, `favorited`, `following` and the total; one more to
# look the viewer up when signed in.
MAX_LIST_STATEMENTS = {"anonymous": 1, "signed in": 2}
# The article with its author, tags and flags; plus the viewer.
MAX_GET_STATEMENTS = {"anonymous": 1, "signed in": 2}
# Find the article, select its comments with their authors; plus the viewer.
MAX_COMMENT_STATEMENTS = {"anonymous": 2, "signed in": 3}


@dataclass
class Library:
    authors: list[Account]
    reader: Account
    fan: Account
    slugs: list[str]


@pytest.fixture
async def library(client: httpx.AsyncClient) -> Library:
    """30 articles by 4 authors, with tags, favourites by several readers, and follows."""
    authors = [await create_user(client) for _ in range(4)]
    reader = await create_user(client)
    fan = await create_user(client)
    slugs = []
    for i in range(ARTICLES):
        tags = [f"topic{i % 5}", "extra"] + (["common"] if i % 3 else [])
        slugs.append((await create_article(client, authors[i % 4], tags=tags))["slug"])
    for i, slug in enumerate(slugs):
        if i % 2 == 0:
            await favorite(client, fan, slug)
        if i % 3 == 1:
            await favorite(client, reader, slug)
        if i % 4 == 1:
            await favorite(client, authors[0], slug)
    await follow(client, reader, authors[0].username)
    await follow(client, reader, authors[1].username)
    await follow(client, fan, authors[2].username)
    return Library(authors=authors, reader=reader, fan=fan, slugs=slugs)


async def measure(
    client: httpx.AsyncClient, statements: list[str], url: str, viewer: Account | None
) -> tuple[int, dict[str, Any]]:
    """The statements one request sends (leaving out the test's own savepoints), and its JSON body."""
    statements.clear()
    response = await client.get(url, headers=viewer.headers if viewer else {})
    assert response.status_code == 200, response.text
    queries = [s for s in statements if not s.startswith(("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO"))]
    return len(queries), dict(response.json())


# (query, how many of the 30 articles match)
FILTERS = {
    "none": ("/api/articles?", ARTICLES),
    "tag": ("/api/articles?tag=common&", 20),
    "author": ("/api/articles?author={author}&", 8),
    "favorited": ("/api/articles?favorited={fan}&", 15),
    "feed": ("/api/articles/feed?", 16),
}


CASES = [
    (viewer, name)
    for viewer in ("anonymous", "signed in")
    for name in FILTERS
    if (viewer, name) != ("anonymous", "feed")
]


@pytest.mark.parametrize(("viewer_kind", "filter_name"), CASES)
async def test_listing_costs_the_same_few_statements_for_every_page_size(
    client: httpx.AsyncClient, statements: list[str], library: Library, viewer_kind: str, filter_name: str
) -> None:
    viewer = library.reader if viewer_kind == "signed in" else None
    template, matching = FILTERS[filter_name]
    url = template.format(author=library.authors[0].username, fan=library.fan.username)
    counts: dict[int, int] = {}
    for size in PAGE_SIZES:
        count, body = await measure(client, statements, f"{url}limit={size}", viewer)
        # The page really is that big, with tags, favourites and follows, so the count means something.
        assert body["articlesCount"] == matching
        assert len(body["articles"]) == min(size, matching)
        assert all(article["tagList"] for article in body["articles"])
        counts[size] = count
        if viewer is not None and len(body["articles"]) >= 10:
            assert any(article["favorited"] for article in body["articles"])
            assert any(article["author"]["following"] for article in body["articles"])
    assert len(set(counts.values())) == 1, counts
    assert counts[1] <= MAX_LIST_STATEMENTS[viewer_kind], counts


@pytest.mark.parametrize("viewer_kind", ["anonymous", "signed in"])
async def test_reading_one_article_costs_the_same_few_statements_whatever_it_carries(
    client: httpx.AsyncClient, statements: list[str], library: Library, viewer_kind: str
) -> None:
    viewer = library.reader if viewer_kind == "signed in" else None
    bare = await create_article(client, library.authors[3])
    many_tags = await create_article(client, library.authors[0], tags=[f"tag{i}" for i in range(20)])
    for fan in [library.fan, library.reader, *library.authors]:
        await favorite(client, fan, many_tags["slug"])
    counts: dict[str, int] = {}
    for slug in (bare["slug"], many_tags["slug"], library.slugs[0]):
        count, body = await measure(client, statements, f"/api/articles/{slug}", viewer)
        assert body["article"]["slug"] == slug
        if slug == many_tags["slug"]:
            assert len(body["article"]["tagList"]) == 20
            assert body["article"]["favoritesCount"] == 6
            assert body["article"]["favorited"] is (viewer is not None)
        counts[slug] = count
    assert len(set(counts.values())) == 1, counts
    assert counts[bare["slug"]] <= MAX_GET_STATEMENTS[viewer_kind], counts


@pytest.mark.parametrize("viewer_kind", ["anonymous", "signed in"])
async def test_listing_comments_costs_the_same_few_statements_however_many_there_are(
    client: httpx.AsyncClient, statements: list[str], library: Library, viewer_kind: str
) -> None:
    viewer = library.reader if viewer_kind == "signed in" else None
    few, many = library.slugs[0], library.slugs[1]
    await create_comment(client, library.fan, few)
    for i in range(20):
        await create_comment(client, library.authors[i % 4], many, f"comment {i}")
    few_count, few_body = await measure(client, statements, f"/api/articles/{few}/comments", viewer)
    many_count, many_body = await measure(client, statements, f"/api/articles/{many}/comments", viewer)
    assert (len(few_body["comments"]), len(many_body["comments"])) == (1, 20)
    if viewer is not None:
        assert any(comment["author"]["following"] for comment in many_body["comments"])
    assert few_count == many_count
    assert many_count <= MAX_COMMENT_STATEMENTS[viewer_kind], many_count


SHAPES = list(itertools.product((False, True), repeat=4))


@pytest.mark.parametrize("dialect", [dialects.SQLITE, dialects.POSTGRESQL], ids=repr)
@pytest.mark.parametrize("with_viewer", [False, True])
def test_every_read_statement_stays_in_sqlalchemys_compiled_cache(
    with_viewer: bool, dialect: dialects.InkwellDialect
) -> None:
    # A construct without a cache key (a custom column, say) makes SQLAlchemy compile the statement
    # again on every request: nothing fails, the list just costs half again as much CPU.
    statements = [repository._article_query(dialect, with_viewer)]
    statements += [repository._page_query(dialect, shape, with_viewer) for shape in SHAPES]
    statements += [repository._count_query(shape) for shape in SHAPES]
    for statement in statements:
        assert statement._generate_cache_key() is not None, statement
