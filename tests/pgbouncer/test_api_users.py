"""tests/api/test_users.py again, through PgBouncer (conftest.py)."""

from tests.api.test_users import *  # noqa: F403
