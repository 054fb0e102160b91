"""Users and who follows whom."""

from __future__ import annotations

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, Integer, String, Text, func, true
from sqlalchemy.orm import Mapped, mapped_column

from service.models.base import Base, TimestampMixin


class User(TimestampMixin, Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    bio: Mapped[str | None] = mapped_column(Text)
    image: Mapped[str | None] = mapped_column(String(2048))
    role: Mapped[str] = mapped_column(String(16), default="editor")
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    # The `articlesCount` of `?author=` and `?favorited=` lists (trigger-kept, see models.articles).
    articles_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    favorites_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    __table_args__ = (
        CheckConstraint("role IN ('viewer', 'editor', 'admin')", name="role"),
        Index("ix_users_created_at_id", "created_at", "id"),
    )


# Usernames are unique in any case (`jake` and `JAKE` are one name), stored as typed (migration 0003).
Index("uq_users_username_lower", func.lower(User.username), unique=True)


class Follow(Base):
    __tablename__ = "follows"

    follower_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    followee_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
