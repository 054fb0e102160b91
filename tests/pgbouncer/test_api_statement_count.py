"""tests/api/test_statement_count.py again, through PgBouncer (conftest.py)."""

from tests.api.test_statement_count import *  # noqa: F403
