"""Profiles in Conduit's wire format (`{"profile": {...}}`)."""

from __future__ import annotations

from typing import Any

from service import wire
from service.profiles.service import ProfileView


def profile(view: ProfileView) -> dict[str, Any]:
    user = view.user
    return {
        "profile": wire.profile(
            username=user.username, bio=user.bio, image=user.image, following=view.following
        )
    }
