"""tests/api/test_comments.py again, through PgBouncer (conftest.py)."""

from tests.api.test_comments import *  # noqa: F403
