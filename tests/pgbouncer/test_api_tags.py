"""tests/api/test_tags.py again, through PgBouncer (conftest.py)."""

from tests.api.test_tags import *  # noqa: F403
