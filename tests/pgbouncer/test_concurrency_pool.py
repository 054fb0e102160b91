"""tests/concurrency/test_pool.py again, through PgBouncer (conftest.py)."""

from tests.concurrency.test_pool import *  # noqa: F403
