"""tests/api/test_cache.py again, through PgBouncer (conftest.py)."""

from tests.api.test_cache import *  # noqa: F403
