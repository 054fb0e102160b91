"""Every ORM model, importable from one place (Alembic's autogenerate reads Base.metadata)."""

from service.models.articles import Article, ArticleTag, Counter, Favorite, Tag
from service.models.base import Base
from service.models.comments import Comment
from service.models.users import Follow, User

__all__ = ["Article", "ArticleTag", "Base", "Comment", "Counter", "Favorite", "Follow", "Tag", "User"]
