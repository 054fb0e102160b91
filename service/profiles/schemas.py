"""Profile bodies on the wire."""

from __future__ import annotations

from pydantic import BaseModel

from service.schemas import Profile


class ProfileResponse(BaseModel):
    profile: Profile
