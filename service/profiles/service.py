"""Looking up profiles and following or unfollowing their owners."""

from __future__ import annotations

from dataclasses import dataclass

from service.db import UnitOfWork
from service.errors import NotFound, Unprocessable
from service.live import emit
from service.models import User
from service.users import repository as users


@dataclass(frozen=True)
class ProfileView:
    """A user as another sees them: whether the viewer follows them."""

    user: User
    following: bool


async def _target(uow: UnitOfWork, username: str) -> User:
    user = await users.get_by_username(uow, username)
    if user is None:
        raise NotFound("profile")
    return user


async def get(*, uow: UnitOfWork, username: str, viewer: User | None) -> ProfileView:
    target = await _target(uow, username)
    following = viewer is not None and await users.is_following(
        uow, follower_id=viewer.id, followee_id=target.id
    )
    return ProfileView(target, following)


async def follow(*, uow: UnitOfWork, username: str, viewer: User) -> ProfileView:
    target = await _target(uow, username)
    if target.id == viewer.id:
        raise Unprocessable({"profile": ["cannot follow yourself"]})
    if await users.follow(uow, follower_id=viewer.id, followee_id=target.id):
        emit.following_changed(uow, follower=viewer, followee_id=target.id, following=True)
    return ProfileView(target, following=True)


async def unfollow(*, uow: UnitOfWork, username: str, viewer: User) -> ProfileView:
    target = await _target(uow, username)
    if await users.unfollow(uow, follower_id=viewer.id, followee_id=target.id):
        emit.following_changed(uow, follower=viewer, followee_id=target.id, following=False)
    return ProfileView(target, following=False)
