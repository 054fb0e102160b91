"""Articles, their ordered tags, and favourites."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from service.dialects import UtcDateTime
from service.models.base import Base, TimestampMixin

# Counts that lists and `GET /api/tags` read instead of counting rows. Database triggers keep them
# (migration 0002): in the transaction of the write that changes them, whichever code writes, the
# cascades of a deleted article included. `Article.favorites_count` is the exception, kept by the
# favourite's own statements as it was before the triggers, so pods of the previous version and
# this one count alike during a rolling upgrade.


class Article(TimestampMixin, Base):
    __tablename__ = "articles"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(300), unique=True)
    title: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    # Kept in step with `favorites` inside the same transaction, so lists need no COUNT per row.
    favorites_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    # Every list is ordered newest first by (created_at, id): each of these reads a page in order.
    __table_args__ = (
        Index("ix_articles_created_at_id", "created_at", "id"),
        Index("ix_articles_author_id_created_at_id", "author_id", "created_at", "id"),
    )


class Tag(Base):
    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    # How many articles carry the tag (trigger-kept); a tag at zero is not listed.
    articles_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # When an article last took the tag, so a tag just used is listed however many others there are.
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


# The listed tags, most used first and most recently used first; both skip tags at zero.
Index(
    "ix_tags_articles_count_name",
    Tag.articles_count.desc(),
    Tag.name,
    postgresql_where=Tag.articles_count > 0,
    sqlite_where=Tag.articles_count > 0,
)
Index(
    "ix_tags_last_used_at",
    Tag.last_used_at.desc(),
    postgresql_where=Tag.articles_count > 0,
    sqlite_where=Tag.articles_count > 0,
)


class Counter(Base):
    """Totals over a whole table, one row each (`articles`), trigger-kept."""

    __tablename__ = "counters"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)


class ArticleTag(Base):
    __tablename__ = "article_tags"

    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id", ondelete="CASCADE"), primary_key=True)
    tag_id: Mapped[int] = mapped_column(ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True)
    # The order they were stored in (alphabetical since tags are returned so; older articles keep
    # their author's order here, and are read in alphabetical order all the same).
    position: Mapped[int] = mapped_column(Integer)
    # The article's own created_at (which never changes), so `?tag=` reads its page from this
    # table's index in list order instead of joining every tagged article to sort them.
    article_created_at: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (Index("ix_article_tags_tag_id_listed", "tag_id", "article_created_at", "article_id"),)


class Favorite(Base):
    __tablename__ = "favorites"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    article_id: Mapped[int] = mapped_column(
        ForeignKey("articles.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    # As in `ArticleTag`: `?favorited=` reads its page from this table's index, in list order.
    article_created_at: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (Index("ix_favorites_user_id_listed", "user_id", "article_created_at", "article_id"),)
