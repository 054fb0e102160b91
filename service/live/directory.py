"""What the hub asks of the database, each in one read-only unit of work: who a token names (the REST
sign-in, so a deactivated user is refused as REST refuses them), whether an article may be
subscribed to (as REST would read it), and whom a user follows."""

from __future__ import annotations

import jwt
from sqlalchemy import select

from service.articles import service as articles
from service.config import Settings
from service.db import Database
from service.errors import NotFound
from service.models import Follow
from service.users import service as users


class Directory:
    def __init__(self, database: Database, settings: Settings) -> None:
        self.database = database
        self.settings = settings

    async def signed_in(self, token: str) -> tuple[int, float]:
        """The active user's id and when the token expires (epoch seconds); Unauthorized otherwise."""
        async with self.database.unit_of_work(writable=False) as uow:
            user = await users.signed_in(uow=uow, settings=self.settings, token=token)
        # signed_in has verified the signature and the expiry; only `exp` is read here.
        claims = jwt.decode(token, options={"verify_signature": False})
        return user.id, float(claims["exp"])

    async def article_exists(self, slug: str, *, reader: int | None = None) -> bool:
        """Whether an anonymous reader may GET the article (an event carries nothing personal), read
        where `reader`'s own writes are seen. A miss on a replica is asked again of the primary: an
        article published a moment ago may not have been replayed yet, and a socket refused its topic
        would not ask again, where a REST reader would reload."""
        if await self._article_found(slug, reader=reader, primary=False):
            return True
        return self.database.replica is not None and await self._article_found(
            slug, reader=reader, primary=True
        )

    async def _article_found(self, slug: str, *, reader: int | None, primary: bool) -> bool:
        async with self.database.unit_of_work(writable=False, reader=reader, primary=primary) as uow:
            try:
                await articles.get(uow=uow, slug=slug, viewer=None)
            except NotFound:
                return False
        return True

    async def followed_by(self, user_id: int) -> set[int]:
        async with self.database.unit_of_work(writable=False, reader=user_id) as uow:
            rows = await uow.read.rows(select(Follow.followee_id).where(Follow.follower_id == user_id))
            return {row[0] for row in rows}
