"""tests/api/test_favorites.py again, through PgBouncer (conftest.py)."""

from tests.api.test_favorites import *  # noqa: F403
