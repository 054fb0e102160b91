"""A deterministic demo data set: the same seed and size always give the same users, articles,
tags, comments, favourites and follows (the benchmarks and load tests rely on that)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update

from service.auth.roles import Role
from service.auth.security import hash_password
from service.config import Settings
from service.db import Database, create_engine
from service.models import Article, ArticleTag, Comment, Favorite, Follow, Tag, User

_WORDS = [
    "api",
    "async",
    "cache",
    "cluster",
    "commit",
    "container",
    "database",
    "deploy",
    "dragon",
    "editor",
    "engine",
    "event",
    "feed",
    "gateway",
    "graph",
    "index",
    "ingress",
    "kernel",
    "latency",
    "log",
    "metric",
    "migration",
    "network",
    "node",
    "observability",
    "operator",
    "pipeline",
    "pod",
    "postgres",
    "probe",
    "query",
    "queue",
    "replica",
    "request",
    "rollout",
    "schema",
    "service",
    "shard",
    "signal",
    "slug",
    "socket",
    "span",
    "stream",
    "table",
    "token",
    "trace",
    "transaction",
    "vector",
    "worker",
]
_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class SeedSize:
    users: int
    articles: int
    comments: int
    favorites: int
    follows: int
    tags: int = 20

    @classmethod
    def scaled(cls, *, users: int, articles: int) -> SeedSize:
        """Comments, favourites and follows in the proportions of the benchmark data set
        (50 users, 500 articles, 1,000 comments, 1,500 favourites, 250 follows)."""
        return cls(
            users=users,
            articles=articles,
            comments=2 * articles,
            favorites=min(3 * articles, users * articles),
            follows=min(5 * users, users * (users - 1)),
        )


def _sentence(rng: random.Random, words: int) -> str:
    text = " ".join(rng.choice(_WORDS) for _ in range(words))
    return text[0].upper() + text[1:]


def _body(rng: random.Random, approx_chars: int = 1600) -> str:
    paragraphs: list[str] = []
    while sum(len(p) + 2 for p in paragraphs) < approx_chars:
        paragraphs.append(". ".join(_sentence(rng, rng.randint(6, 14)) for _ in range(4)) + ".")
    return "\n\n".join(paragraphs)


def _pairs(rng: random.Random, count: int, left: int, right: int, *, distinct: bool) -> list[tuple[int, int]]:
    chosen: set[tuple[int, int]] = set()
    while len(chosen) < count:
        pair = (rng.randrange(left), rng.randrange(right))
        if not (distinct and pair[0] == pair[1]):
            chosen.add(pair)
    return sorted(chosen)


async def run_seed(settings: Settings, *, size: SeedSize, seed: int, password: str) -> str:
    rng = random.Random(seed)
    engine = create_engine(settings, null_pool=True)
    password_hash = await hash_password(settings, password)
    try:
        async with Database(engine).unit_of_work(writable=True) as uow:
            if (await uow.read.rows(select(func.count()).select_from(User))).scalar_one():
                raise SystemExit("the database already has users; seed expects an empty database")
            users = [
                User(
                    username=f"user{i:03d}",
                    email=f"user{i:03d}@inkwell.test",
                    password_hash=password_hash,
                    bio=_sentence(rng, 8) if i % 3 else None,
                    image=None,
                    role=Role.admin.value if i == 0 else Role.editor.value,
                    is_active=True,
                    created_at=_EPOCH + timedelta(minutes=i),
                    updated_at=_EPOCH + timedelta(minutes=i),
                )
                for i in range(size.users)
            ]
            tags = [Tag(name=word) for word in rng.sample(_WORDS, size.tags)]
            uow.add(*users, *tags)
            await uow.save()

            articles: list[Article] = []
            for i in range(size.articles):
                created = _EPOCH + timedelta(days=1, minutes=7 * i)
                title = _sentence(rng, rng.randint(3, 7))
                articles.append(
                    Article(
                        slug=f"{'-'.join(title.lower().split())}-{i}",
                        title=title,
                        description=_sentence(rng, 12),
                        body=_body(rng),
                        author_id=users[rng.randrange(size.users)].id,
                        favorites_count=0,
                        created_at=created,
                        updated_at=created,
                    )
                )
            uow.add(*articles)
            await uow.save()

            for article in articles:
                for position, tag in enumerate(rng.sample(tags, rng.randint(1, 4))):
                    uow.add(
                        ArticleTag(
                            article_id=article.id,
                            tag_id=tag.id,
                            position=position,
                            article_created_at=article.created_at,
                        )
                    )
            for i in range(size.comments):
                article = articles[rng.randrange(size.articles)]
                when = article.created_at + timedelta(hours=1, minutes=i)
                uow.add(
                    Comment(
                        body=_sentence(rng, rng.randint(5, 25)),
                        article_id=article.id,
                        author_id=users[rng.randrange(size.users)].id,
                        created_at=when,
                        updated_at=when,
                    )
                )
            for user_index, article_index in _pairs(
                rng, size.favorites, size.users, size.articles, distinct=False
            ):
                article = articles[article_index]
                uow.add(
                    Favorite(
                        user_id=users[user_index].id,
                        article_id=article.id,
                        article_created_at=article.created_at,
                    )
                )
            for follower, followee in _pairs(rng, size.follows, size.users, size.users, distinct=True):
                uow.add(Follow(follower_id=users[follower].id, followee_id=users[followee].id))
            await uow.save()
            counts = select(func.count()).where(Favorite.article_id == Article.id).scalar_subquery()
            await uow.write(update(Article).values(favorites_count=counts))
    finally:
        await engine.dispose()
    return (
        f"seeded {size.users} users (user000 is admin, password {password!r}), {size.articles} articles, "
        f"{size.tags} tags, {size.comments} comments, {size.favorites} favourites, {size.follows} follows"
    )


async def assign_role(settings: Settings, username: str, role: Role) -> bool:
    engine = create_engine(settings, null_pool=True)
    try:
        async with Database(engine).unit_of_work(writable=True) as uow:
            result = await uow.write(
                update(User).where(User.username == username).values(role=role.value).returning(User.id)
            )
            return result.first() is not None
    finally:
        await engine.dispose()
