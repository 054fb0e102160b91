"""tests/api/test_feed.py again, through PgBouncer (conftest.py)."""

from tests.api.test_feed import *  # noqa: F403
