"""Article bodies on the wire: the single article with its body, list items without it (spec 2024-08)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints

from service.schemas import NotBlank, NotNull, Profile, Timestamp, WireModel

MAX_TAGS = 20

TagName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]


def _unique(tags: list[str]) -> list[str]:
    # Stored in this order; read back in alphabetical order (`repository._tag_names`).
    return sorted(set(tags))


TagList = Annotated[list[TagName], Field(max_length=MAX_TAGS), AfterValidator(_unique)]
Title = Annotated[str, Field(min_length=1, max_length=255), NotBlank]
Description = Annotated[str, Field(min_length=1, max_length=1000), NotBlank]
Body = Annotated[str, Field(min_length=1, max_length=100_000), NotBlank]


class NewArticle(WireModel):
    title: Title
    description: Description
    body: Body
    tag_list: TagList = []


class NewArticleRequest(WireModel):
    article: NewArticle


class UpdateArticle(WireModel):
    # Left out, each field stays as it was; null is 422 (the spec does not allow it).
    title: Annotated[Title | None, NotNull] = None
    description: Annotated[Description | None, NotNull] = None
    body: Annotated[Body | None, NotNull] = None
    # [] removes every tag.
    tag_list: Annotated[TagList | None, NotNull] = None


class UpdateArticleRequest(WireModel):
    article: UpdateArticle


class ArticleListItem(WireModel):
    slug: str
    title: str
    description: str
    tag_list: list[str]
    created_at: Timestamp
    updated_at: Timestamp
    favorited: bool
    favorites_count: int
    author: Profile


class Article(ArticleListItem):
    body: str


class SingleArticleResponse(WireModel):
    article: Article


class MultipleArticlesResponse(WireModel):
    articles: list[ArticleListItem]
    articles_count: int


class TagsResponse(WireModel):
    tags: list[str]


@dataclass(frozen=True)
class ArticleFilter:
    """Which articles a list shows: Conduit's query filters, or the feed of one user."""

    tag: str | None = None
    author: str | None = None
    favorited: str | None = None
    feed_of: int | None = None
