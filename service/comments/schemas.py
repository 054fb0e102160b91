"""Comment bodies on the wire."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from service.schemas import NotBlank, Profile, Timestamp, WireModel


class NewComment(WireModel):
    body: Annotated[str, Field(min_length=1, max_length=10_000), NotBlank]


class NewCommentRequest(WireModel):
    comment: NewComment


class Comment(WireModel):
    id: int
    created_at: Timestamp
    updated_at: Timestamp
    body: str
    author: Profile


class SingleCommentResponse(WireModel):
    comment: Comment


class MultipleCommentsResponse(WireModel):
    comments: list[Comment]
