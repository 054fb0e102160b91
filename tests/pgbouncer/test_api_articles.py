"""tests/api/test_articles.py again, through PgBouncer (conftest.py)."""

from tests.api.test_articles import *  # noqa: F403
