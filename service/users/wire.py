"""Users in Conduit's wire format (`{"user": {...}}`), and the OAuth2 token response."""

from __future__ import annotations

from typing import Any

from service.models import User


def user(user: User, *, token: str) -> dict[str, Any]:
    return {
        "user": {
            "email": user.email,
            "token": token,
            "username": user.username,
            "bio": user.bio,
            "image": user.image,
        }
    }


def token(access_token: str, *, expires_in: int) -> dict[str, Any]:
    """RFC 6749 section 5.1, in that standard's snake_case."""
    return {"access_token": access_token, "token_type": "bearer", "expires_in": expires_in}
