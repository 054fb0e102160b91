"""tests/api/test_read_sessions.py again, through PgBouncer (conftest.py)."""

from tests.api.test_read_sessions import *  # noqa: F403
