"""Looking up profiles and following or unfollowing their owners."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from service.errors import NotFound, Unprocessable
from service.models import User
from service.schemas import Profile
from service.users import repository as users


def profile_out(user: User, *, following: bool) -> Profile:
    return Profile(username=user.username, bio=user.bio, image=user.image, following=following)


async def _target(session: AsyncSession, username: str) -> User:
    user = await users.get_by_username(session, username)
    if user is None:
        raise NotFound("profile")
    return user


async def get(*, session: AsyncSession, username: str, viewer: User | None) -> Profile:
    target = await _target(session, username)
    following = viewer is not None and await users.is_following(
        session, follower_id=viewer.id, followee_id=target.id
    )
    return profile_out(target, following=following)


async def follow(*, session: AsyncSession, username: str, viewer: User) -> Profile:
    target = await _target(session, username)
    if target.id == viewer.id:
        raise Unprocessable({"profile": ["cannot follow yourself"]})
    await users.follow(session, follower_id=viewer.id, followee_id=target.id)
    return profile_out(target, following=True)


async def unfollow(*, session: AsyncSession, username: str, viewer: User) -> Profile:
    target = await _target(session, username)
    await users.unfollow(session, follower_id=viewer.id, followee_id=target.id)
    return profile_out(target, following=False)
